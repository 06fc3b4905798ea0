"""`mbnas evaluate`: final retraining, model folders, the front, external sets."""
