"""One network's training over the gradient sources: methods, optimizers, the training loop, gradcheck, bench."""
