"""`mbnas report`: reads the runs and the evaluation and calls :mod:`mbnas.reporting`."""
