"""Plain NumPy twins of gradsel's kernels: slow, obvious, and independent of the package.

The network is ``x @ W1 + b1 [-> batch norm] -> act -> * mask -> @ W2 + b2 ->
mean softmax cross-entropy or MSE [+ weight decay]``. Weights are passed as a
list ``[W1, b1, W2, b2]`` (``+ [gamma, beta]`` with batch norm); gradients come
back in the same layout. Everything computes in the dtype of the weights and
the data (float64 or float32: pass both in the same one). Nothing here imports
gradsel_cli.
"""

import math

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


BN_EPS = 1e-6  # batch norm: u = gamma (a1 - mean) / sqrt(var + BN_EPS) + beta


def forward(weights, x, act="sigmoid", mask=None):
    """a1 (B, H) (after batch norm when weights carry gamma, beta), z1 (B, H) and logits a2 (B, K);
    z1 carries the mask. weights: [W1, b1, W2, b2] or [W1, b1, W2, b2, gamma, beta]."""
    W1, b1, W2, b2 = weights[:4]
    a1 = x @ W1 + b1
    if len(weights) == 6:
        gamma, beta = weights[4:]
        a1 = gamma * (a1 - a1.mean(axis=0)) / np.sqrt(a1.var(axis=0) + BN_EPS) + beta
    z1 = ACTIVATIONS[act][0](a1)
    if mask is not None:
        z1 = z1 * mask
    a2 = z1 @ W2 + b2
    return a1, z1, a2


def softmax(a2):
    e = np.exp(a2 - a2.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(a2, y, eps=0.0):
    """Mean softmax cross-entropy via log-sum-exp; with eps > 0 the textbook's -log(p_y + eps)."""
    if eps:
        p = softmax(a2)[np.arange(len(y)), y]
        return -np.sum(np.log(p + a2.dtype.type(eps))) / a2.dtype.type(len(y))
    m = a2.max(axis=1)
    log_sum_exp = m + np.log(np.exp(a2 - m[:, None]).sum(axis=1))
    return np.mean(log_sum_exp - a2[np.arange(len(y)), y])


def mse(a2, y):
    """1/2 mean over the batch of the squared distance between softmax(a2) and the one-hot target."""
    onehot = np.eye(a2.shape[1], dtype=a2.dtype)[y]
    return np.mean(0.5 * ((softmax(a2) - onehot) ** 2).sum(axis=1))


def weight_penalty(weights, weight_decay):
    """1/2 lambda (|W1|^2 + |W2|^2); biases, gamma and beta are not decayed."""
    return 0.5 * weight_decay * (np.sum(weights[0] ** 2) + np.sum(weights[2] ** 2))


def loss(weights, x, y, act="sigmoid", mask=None, loss="cross-entropy", weight_decay=0.0, eps=0.0):
    return total_loss(weights, x, y, act, mask, loss, weight_decay, eps)


def total_loss(weights, x, y, act="sigmoid", mask=None, loss="cross-entropy", weight_decay=0.0, eps=0.0):
    a2 = forward(weights, x, act, mask)[2]
    data_loss = mse(a2, y) if loss == "mse" else cross_entropy(a2, y, eps)
    return data_loss + weight_penalty(weights, weight_decay)


def predict(weights, x, act="sigmoid"):
    return np.argmax(forward(weights, x, act)[2], axis=1)


def analytic_gradient(weights, x, y, act="sigmoid", mask=None, loss="cross-entropy", weight_decay=0.0, eps=0.0):
    """Backpropagation: [gW1, gb1, gW2, gb2] (+ [ggamma, gbeta] with batch norm).

    eps > 0: the true gradient of -log(p_y + eps), d/da2 = (p - onehot) p_y / (p_y + eps)
    (gradsel's backprop, like the textbook's, differentiates -log p_y whatever eps).
    """
    W1, b1, W2, _b2 = weights[:4]
    B = len(y)
    pre = x @ W1 + b1  # hidden pre-activation before batch norm
    a1, z1, a2 = forward(weights, x, act, mask)  # a1: what the activation sees
    onehot = np.eye(a2.shape[1], dtype=a2.dtype)[y]
    p = softmax(a2)
    if loss == "mse":  # d/da2_j of 1/2 sum_k (p_k - t_k)^2 = p_j ((p_j - t_j) - sum_k (p_k - t_k) p_k)
        r = p - onehot
        da2 = p * (r - (r * p).sum(axis=1, keepdims=True)) / B
    else:
        da2 = (p - onehot) / B
        if eps:
            py = p[np.arange(B), y]
            da2 = da2 * (py / (py + eps))[:, None]
    gW2 = z1.T @ da2
    gb2 = da2.sum(axis=0)
    dz1 = da2 @ W2.T
    if mask is not None:
        dz1 = dz1 * mask
    da1 = dz1 * ACTIVATIONS[act][1](a1)
    extra = []
    if len(weights) == 6:
        gamma = weights[4]
        inv_std = 1.0 / np.sqrt(pre.var(axis=0) + BN_EPS)
        xhat = (pre - pre.mean(axis=0)) * inv_std
        extra = [(da1 * xhat).sum(axis=0), da1.sum(axis=0)]
        dxhat = da1 * gamma
        da1 = inv_std / B * (B * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
    gW1 = x.T @ da1 + weight_decay * W1
    gb1 = da1.sum(axis=0)
    return [gW1, gb1, gW2 + weight_decay * W2, gb2, *extra]


def numeric_gradient(
    weights,
    x,
    y,
    step=1e-4,
    scheme="central",
    act="sigmoid",
    mask=None,
    loss="cross-entropy",
    weight_decay=0.0,
    eps=0.0,
):
    """The naive method, as the textbook codes it: perturb one weight, full forward pass, restore, and
    (f(w + h) - f(w - h)) / 2h of the two batch losses, in the weights' dtype."""
    weights = [w.copy() for w in weights]
    f = lambda: total_loss(weights, x, y, act, mask, loss, weight_decay, eps)  # noqa: E731
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


def pairwise_sum(values):
    """NumPy's pairwise summation order for a contiguous array, written out one addition at a time in
    the values' own precision: runs of up to 128 in eight running sums, longer runs halved at a
    multiple of 8."""
    n = len(values)
    if n < 8:
        total = values.dtype.type(0)
        for v in values:
            total = total + v
        return total
    if n <= 128:
        r = list(values[:8])
        i = 8
        while i < n - n % 8:
            r = [r[k] + values[i + k] for k in range(8)]
            i += 8
        total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for v in values[i:]:
            total = total + v
        return total
    half = n // 2 - (n // 2) % 8
    return pairwise_sum(values[:half]) + pairwise_sum(values[half:])


# --- the complex-step derivative: the loss in complex, Im L(w + i h e_i) / h for every weight ---------------


def complex_sigmoid(z):
    with np.errstate(over="ignore", invalid="ignore"):  # np.where evaluates both sides; the kept one is finite
        return np.where(z.real >= 0, 1.0 / (1.0 + np.exp(-z)), np.exp(z) / (1.0 + np.exp(z)))


def complex_softplus(z):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(z.real > 0, z + np.log(1.0 + np.exp(-z)), np.log(1.0 + np.exp(z)))


COMPLEX_ACTIVATIONS = {  # ReLU and leaky ReLU branch on the real part: at exactly 0, the a <= 0 side
    "sigmoid": complex_sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.where(z.real > 0, z, 0.0 * z),
    "leaky-relu": lambda z: np.where(z.real > 0, z, LEAKY_SLOPE * z),
    "mish": lambda z: z * np.tanh(complex_softplus(z)),
}


def complex_logits(weights, x, act="sigmoid", mask=None):
    """The logits a2 (B, K) of complex weights, batch norm included (the variance as the mean of
    (a - mean)^2: np.var would take |a - mean|^2, a real number that drops the imaginary part)."""
    W1, b1, W2, b2 = weights[:4]
    a1 = x @ W1 + b1
    if len(weights) == 6:
        gamma, beta = weights[4:]
        mu = a1.mean(axis=0)
        d = a1 - mu
        a1 = gamma * d / np.sqrt((d * d).mean(axis=0) + BN_EPS) + beta
    z1 = COMPLEX_ACTIVATIONS[act](a1)
    if mask is not None:
        z1 = z1 * mask
    return z1 @ W2 + b2


def complex_mean_loss(a2, y, loss="cross-entropy", eps=0.0):
    """The mean loss of complex logits: log-sum-exp with the real max subtracted, -log(p_y + eps), or
    1/2 the squared distance of the softmax to the one-hot target."""
    rows = np.arange(len(y))
    real = a2.real.dtype.type
    m = a2.real.max(axis=1, keepdims=True)
    e = np.exp(a2 - m)
    S = e.sum(axis=1)
    if loss == "mse":
        d = e / S[:, None] - np.eye(a2.shape[1], dtype=a2.real.dtype)[y]
        return np.mean(real(0.5) * (d * d).sum(axis=1))
    if eps:
        return -np.mean(np.log(e[rows, y] / S + real(eps)))
    return np.mean(np.log(S) + m[:, 0] - a2[rows, y])


def complex_step_gradient(weights, x, y, act="sigmoid", mask=None, loss="cross-entropy", eps=0.0, h=1e-20):
    """The naive complex step: for every weight, all weights copied to complex (complex64 for float32),
    i h added to that one, a full complex forward pass and loss, and Im / h. Same layout as the weights
    (with batch norm: [W1, b1, W2, b2, gamma, beta])."""
    complex_type = np.complex64 if weights[0].dtype == np.float32 else np.complex128
    real = weights[0].dtype.type
    grads = []
    for n, w in enumerate(weights):
        g = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            work = [v.astype(complex_type) for v in weights]
            work[n][i] += complex_type(1j * h)
            g[i] = complex_mean_loss(complex_logits(work, x, act, mask), y, loss, eps).imag / real(h)
        grads.append(g)
    return grads


def deep_stack(x, layer_weights, act="sigmoid"):
    """The textbook's weight_init_activation_histogram.py: x through layers z = act(z @ W) (no biases); each
    layer's activations."""
    out, z = [], x
    for W in layer_weights:
        z = ACTIVATIONS[act][0](z @ W)
        out.append(z)
    return out


def histogram_stats(values, lo, hi, bins=30, zeros_apart=False):
    """Counts in `bins` bins over [lo, hi] (exact zeros left out when zeros_apart), the zeros, below, above,
    mean and std of all the values."""
    v = np.ravel(values)
    zero = (v == 0) if zeros_apart else np.zeros(v.shape, bool)
    edges = lo + (hi - lo) * np.arange(bins + 1) / bins
    kept = v[~zero]
    counts = [
        int(np.sum((kept >= edges[i]) & ((kept < edges[i + 1]) | ((i == bins - 1) & (kept == hi)))))
        for i in range(bins)
    ]
    return {
        "counts": counts,
        "zeros": int(zero.sum()),
        "below": int(np.sum(v < lo)),
        "above": int(np.sum(v > hi)),
        "mean": float(np.mean(v)),
        "std": float(np.std(v)),
    }


SPLITMIX_GOLDEN, SPLITMIX_M1, SPLITMIX_M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def splitmix_entry(word, i):
    """Entry i of the stream of `word` (splitmix_bits's)."""
    mask = (1 << 64) - 1
    z = (int(word) + (i + 1) * SPLITMIX_GOLDEN) & mask
    z = ((z ^ (z >> 30)) * SPLITMIX_M1) & mask
    z = ((z ^ (z >> 27)) * SPLITMIX_M2) & mask
    return z ^ (z >> 31)


def splitmix_bits(word, n):
    """Entries 0 ... n - 1 of the stream of a uint64 `word`: the splitmix64 finaliser of word + (i + 1) * golden,
    in Python's integers reduced mod 2^64 (Steele, Lea and Flood 2014)."""
    return [splitmix_entry(word, i) for i in range(n)]


def rademacher(word, n):
    """n signs of the stream of `word`: sign i is bit i % 64 (the lowest first) of entry i // 64, -1 where set."""
    blocks = splitmix_bits(word, (n + 63) // 64)
    return np.array([-1.0 if (blocks[i // 64] >> (i % 64)) & 1 else 1.0 for i in range(n)])


def uniform(word, n):
    """Entries 0 ... n - 1 of the stream of `word` as floats in [0, 1): the top 53 bits over 2^53."""
    return np.array([(z >> 11) / 2.0**53 for z in splitmix_bits(word, n)])


ZIGGURAT_R, ZIGGURAT_V = 3.6541528853610088, 0.00492867323399  # Marsaglia & Tsang (2000), 256 layers
ZIGGURAT_SALT, ZIGGURAT_RETRIES = 0xD1B54A32D192ED03, 1024


def ziggurat():
    """The 256 layers' right edges (257 values: the base strip's width v / f(r), r, ..., 0) and f = exp(-x^2/2)
    at each: layer L >= 1 has area v between the heights f(x[L]) and f(x[L + 1])."""
    x = [ZIGGURAT_V / math.exp(-0.5 * ZIGGURAT_R**2), ZIGGURAT_R]
    while len(x) < 256:
        x.append(math.sqrt(-2.0 * math.log(ZIGGURAT_V / x[-1] + math.exp(-0.5 * x[-1] ** 2))))
    x.append(0.0)
    return x, [math.exp(-0.5 * v * v) for v in x]


def normal(word, n):
    """Entries 0 ... n - 1 of the stream of `word` as standard normal draws, by the ziggurat: entry i's 64 bits
    give the layer (the low 8), the sign (bit 8) and a uniform m / 2^53 (the top 53 bits); inside the layer's
    rectangle when m < ceil(2^53 x[layer + 1] / x[layer]), else decided by draws of the stream word ^ salt from
    counter i * 1024 on (tail: Marsaglia's exponentials; wedge: a height under the curve, else a new 64 bits)."""
    x_at, f_at = ziggurat()
    inside = [math.ceil(2.0**53 * x_at[layer + 1] / x_at[layer]) for layer in range(256)]
    extra = int(word) ^ ZIGGURAT_SALT
    out = []
    for i, bits in enumerate(splitmix_bits(word, n)):
        counter = i * ZIGGURAT_RETRIES

        def u(c):
            return (splitmix_entry(extra, c) >> 11) / 2.0**53

        while True:
            layer, sign = bits & 255, -1.0 if (bits >> 8) & 1 else 1.0
            x = (bits >> 11) / 2.0**53 * x_at[layer]
            if bits >> 11 < inside[layer]:
                break
            if layer == 0:
                while True:
                    t = -math.log(1.0 - u(counter)) / ZIGGURAT_R
                    s = -math.log(1.0 - u(counter + 1))
                    counter += 2
                    if s + s > t * t:
                        break
                x = ZIGGURAT_R + t
                break
            if f_at[layer] + u(counter) * (f_at[layer + 1] - f_at[layer]) < math.exp(-0.5 * x * x):
                break
            bits = splitmix_entry(extra, counter + 1)
            counter += 2
        out.append(sign * x)
    return np.array(out)


def spsa_gradient(
    weights, x, y, words, zo_eps, dist, act="sigmoid", mask=None, loss_name="cross-entropy", eps=0.0, central=True
):
    """SPSA: (1/q) sum_r (L(w + zo_eps z_r) - L(w - zo_eps z_r)) / (2 zo_eps) z_r (central; forward:
    (L(w + zo_eps z_r) - L(w)) / zo_eps), direction z_r of words[r]: "gaussian", "rademacher" (independent entries)
    or "sphere" (a normal vector scaled to length sqrt(P))."""
    flat = np.concatenate([np.ravel(w) for w in weights])

    def unflat(v):
        return blocks_like(weights, v)

    g = np.zeros_like(flat)
    for word in words:
        z = rademacher(word, flat.size) if dist == "rademacher" else normal(word, flat.size)
        if dist == "sphere":
            z = z * np.sqrt(flat.size / np.sum(z * z))
        plus = loss(unflat(flat + zo_eps * z), x, y, act, mask, loss_name, 0.0, eps)
        if central:
            minus = loss(unflat(flat - zo_eps * z), x, y, act, mask, loss_name, 0.0, eps)
            g += (plus - minus) / (2 * zo_eps) * z
        else:
            g += (plus - loss(weights, x, y, act, mask, loss_name, 0.0, eps)) / zo_eps * z
    return unflat(g / len(words))


def forward_gradient(weights, x, y, words, act="sigmoid", mask=None, loss_name="cross-entropy"):
    """The forward gradient: (1/q) sum_r (g . v_r) v_r with g backpropagation's gradient (analytic_gradient) and
    v_r the standard normal direction of words[r] (normal)."""
    g = np.concatenate([np.ravel(b) for b in analytic_gradient(weights, x, y, act, mask, loss_name)])
    out = np.zeros_like(g)
    for word in words:
        v = normal(word, g.size)
        out += np.dot(g, v) * v
    return blocks_like(weights, out / len(words))


def blocks_like(weights, v):
    """The flat vector v cut into arrays of the shapes of `weights`, in their order."""
    out, at = [], 0
    for w in weights:
        n = int(np.size(w))
        out.append(v[at : at + n].reshape(np.shape(w)))
        at += n
    return out
