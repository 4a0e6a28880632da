"""The network, its gradient sources, optimizers and training loop over the kernels."""
