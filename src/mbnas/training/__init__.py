"""Training runs: the protocol, the trainers, augmentation, loss, executors."""
