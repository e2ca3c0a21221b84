"""Training: optimizers, the fit loop, data loading and plots."""
