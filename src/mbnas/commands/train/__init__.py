"""`mbnas train`: one training run outside a search."""
