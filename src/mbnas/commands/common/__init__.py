"""What every stage shares: run folders, logs, preflight checks, the dataset, progress."""
