"""Plain NumPy twins of gradsel's kernels: slow, obvious, and independent of the package.

The network is ``x @ W1 + b1 -> act -> * mask -> @ W2 + b2 -> mean softmax
cross-entropy``. Weights are passed as a list ``[W1, b1, W2, b2]``; gradients
come back in the same layout. Nothing here imports gradsel_cli.
"""

import numpy as np

LEAKY_SLOPE = 0.01


def sigmoid(a):
    with np.errstate(over="ignore"):  # exp(-a) = inf for a << 0 gives the right limit, 0
        return 1.0 / (1.0 + np.exp(-a))


def sigmoid_grad(a):
    s = sigmoid(a)
    return s * (1.0 - s)


def tanh(a):
    return np.tanh(a)


def tanh_grad(a):
    return 1.0 - np.tanh(a) ** 2


def relu(a):
    return np.where(a > 0, a, 0.0)


def relu_grad(a):
    return np.where(a > 0, 1.0, 0.0)  # ReLU'(0) = 0


def leaky_relu(a):
    return np.where(a > 0, a, LEAKY_SLOPE * a)


def leaky_relu_grad(a):
    return np.where(a > 0, 1.0, LEAKY_SLOPE)


def softplus(a):
    return np.logaddexp(0.0, a)  # log(1 + e^a) without overflow


def mish(a):
    return a * np.tanh(softplus(a))


def mish_grad(a):
    t = np.tanh(softplus(a))
    return t + a * (1.0 - t**2) * sigmoid(a)  # d softplus / da = sigmoid


ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "leaky-relu": (leaky_relu, leaky_relu_grad),
    "mish": (mish, mish_grad),
}


def forward(weights, x, act="sigmoid", mask=None):
    """a1, z1 (B, H) and logits a2 (B, K); z1 carries the mask."""
    W1, b1, W2, b2 = weights
    a1 = x @ W1 + b1
    z1 = ACTIVATIONS[act][0](a1)
    if mask is not None:
        z1 = z1 * mask
    a2 = z1 @ W2 + b2
    return a1, z1, a2


def softmax(a2):
    e = np.exp(a2 - a2.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(a2, y):
    """Mean softmax cross-entropy via log-sum-exp."""
    m = a2.max(axis=1)
    log_sum_exp = m + np.log(np.exp(a2 - m[:, None]).sum(axis=1))
    return np.mean(log_sum_exp - a2[np.arange(len(y)), y])


def loss(weights, x, y, act="sigmoid", mask=None):
    return cross_entropy(forward(weights, x, act, mask)[2], y)


def predict(weights, x, act="sigmoid"):
    return np.argmax(forward(weights, x, act)[2], axis=1)


def analytic_gradient(weights, x, y, act="sigmoid", mask=None):
    """Backpropagation: [gW1, gb1, gW2, gb2]."""
    W1, b1, W2, b2 = weights
    a1, z1, a2 = forward(weights, x, act, mask)
    B = len(y)
    onehot = np.zeros_like(a2)
    onehot[np.arange(B), y] = 1.0
    da2 = (softmax(a2) - onehot) / B
    gW2 = z1.T @ da2
    gb2 = da2.sum(axis=0)
    dz1 = da2 @ W2.T
    if mask is not None:
        dz1 = dz1 * mask
    da1 = dz1 * ACTIVATIONS[act][1](a1)
    gW1 = x.T @ da1
    gb1 = da1.sum(axis=0)
    return [gW1, gb1, gW2, gb2]


def numerical_gradient(weights, x, y, step=1e-4, scheme="central", act="sigmoid", mask=None):
    """The naive method: perturb one weight, full forward pass, restore."""
    weights = [w.copy() for w in weights]
    f = lambda: loss(weights, x, y, act, mask)  # noqa: E731
    base = f()
    grads = []
    for w in weights:
        g = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            keep = w[i]
            w[i] = keep + step
            up = f()
            if scheme == "central":
                w[i] = keep - step
                g[i] = (up - f()) / (2 * step)
            else:
                g[i] = (up - base) / step
            w[i] = keep
        grads.append(g)
    return grads
