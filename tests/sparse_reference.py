"""The problems of test_feature_sparse_paths and the fingerprints of what the kernels give on them.

The fingerprints in data/sparse_reference.json are SHA-256 digests of the exact bytes of every output (loss
values, gradients, activations): they were computed from the kernels as they were before the sparse analytic
gradient and the deduplicated numeric one, kept until then as tests/old_kernels.py (a frozen copy, generic over
float64/float32, with the textbook arithmetic and the loss epsilon). The current kernels must match them bit for
bit. To make the file again, restore that copy from the history and run this module from tests/:

    git show $(git log -1 --format=%H --diff-filter=D -- tests/old_kernels.py)^:tests/old_kernels.py > old_kernels.py
    python sparse_reference.py        # writes data/sparse_reference.json

One change of arithmetic since: the numeric gradient's cross-entropy change without a loss epsilon, in the exact
arithmetic, is its cumulant series (kernels/differences._ce_series; tests/test_kernel_series.py checks it against
a 60-digit reference and the exponentials it replaced). Those cases' fingerprints are of the kernel that
introduced it (`python sparse_reference.py --series` rewrites them, refusing if any other case differs); every
other case is still the old kernels'.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from gradsel_cli.core import network
from gradsel_cli.sources import numeric as numeric_source
from helpers import random_params

STORE = Path(__file__).with_name("data") / "sparse_reference.json"
ACTS = list(network.ACTIVATION_CODES)
DTYPES = {"float64": np.float64, "float32": np.float32}
LOSSES = {
    "cross-entropy": (network.LOSS_CODES["cross-entropy"], 0.0),
    "cross-entropy-eps": (network.LOSS_CODES["cross-entropy"], 1e-7),
    "mse": (network.LOSS_CODES["mse"], 0.0),
}


def digest(*arrays) -> str:
    """SHA-256 of the exact bytes of `arrays`, one after another."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.asarray(a).tobytes())
    return h.hexdigest()


def real_batches(mnist_raw, sizes=((1, 20), (8, 50), (32, 100)), dtype=np.float64):
    """(x, y, params, mask) for real batches drawn with replacement from the first 40 training images."""
    xtr, ytr, _, _ = mnist_raw
    gen = np.random.default_rng(15)
    for B, H in sizes:
        rows = gen.integers(0, 40, size=B)
        x = (np.ascontiguousarray(xtr[rows], dtype=np.float64) / 255.0).astype(dtype)
        y = ytr[rows].astype(np.int64)
        params = network.init_params(H, seed=B, std=0.1, dtype=dtype)
        mask = (gen.uniform(size=(B, H)) < 0.8).astype(dtype)
        yield x, y, params, mask


def analytic_cases(mnist_raw):
    """(name, args) of _analytic (without gamma, beta) on real batches."""
    for dname, dtype in DTYPES.items():
        for lname, (loss, eps) in LOSSES.items():
            for act in range(len(ACTS)):
                for n, (x, y, p, mask) in enumerate(real_batches(mnist_raw, dtype=dtype)):
                    yield (
                        f"analytic/{ACTS[act]}/{lname}/{dname}/{n}",
                        (x, y, p.W1, p.b1, p.W2, p.b2, act, mask, loss, dtype(eps)),
                    )


def forward_cases(mnist_raw):
    """(name, args) of _forward (without gamma, beta): sigmoid on real batches."""
    for dname, dtype in DTYPES.items():
        for n, (x, _y, p, mask) in enumerate(real_batches(mnist_raw, dtype=dtype)):
            yield f"forward/{dname}/{n}", (x, p.W1, p.b1, p.W2, p.b2, 0, mask)


def numeric_cases(mnist_raw):
    """(name, args) of _numeric: batches with repeated samples and repeated pixel values."""
    for dname, dtype in DTYPES.items():
        for arith in numeric_source.FD_ARITHS:
            for scheme in numeric_source.FD_SCHEMES:
                for lname, (loss, eps) in LOSSES.items():
                    for act in range(len(ACTS)):
                        sizes = (
                            ((1, 20), (8, 50), (32, 30)) if loss == network.LOSS_CODES["cross-entropy"] else ((8, 10),)
                        )
                        step = 1e-3 if dtype == np.float32 else 1e-4
                        for n, (x, y, p, mask) in enumerate(real_batches(mnist_raw, sizes, dtype)):
                            mask[:, ::3] = 1.0  # leave some units whole so that repeats with equal mask rows occur
                            if x.shape[0] > 1:
                                x[-1], y[-1], mask[-1] = x[0], y[0], mask[0]  # certainly one repeat
                            yield (
                                f"numeric/{ACTS[act]}/{lname}/{scheme}/{arith}/{dname}/{n}",
                                (
                                    x,
                                    y,
                                    p.W1,
                                    p.b1,
                                    p.W2,
                                    p.b2,
                                    act,
                                    mask,
                                    dtype(step),
                                    scheme == "central",
                                    loss,
                                    arith == "textbook",
                                    dtype(eps),
                                ),
                            )


def signed_zero_cases():
    """(name, args) of _analytic: pixels of -0.0, and rows of 0 to 7 lit pixels (every branch of the
    four-at-a-time sum); the problems of conftest's make_problem(hidden=5, batch=3, n_in=9, seed=lit, zeros=0)."""
    for lit in range(8):
        gen = np.random.default_rng(lit + 1000)
        x = gen.uniform(0.0, 1.0, (3, 9))
        gen.uniform(size=x.shape)  # make_problem's draw of the exact zeros (none at zeros=0)
        y = gen.integers(0, 10, 3)
        params = random_params(5, 9, std=0.5, seed=lit)
        x[:, lit:] = 0.0
        x[1, ::2] = -0.0
        yield f"signed-zeros/{lit}", (x, y, params.W1, params.b1, params.W2, params.b2, 0, np.ones((3, 5)), 0, 0.0)


def main():  # pragma: no cover - run by hand, with the old kernels restored (see above)
    import old_kernels as old

    from gradsel_cli import data

    raw = data.load_mnist_raw()
    store = {}
    for name, args in [*analytic_cases(raw), *signed_zero_cases()]:
        value, *g = old.old_analytic(*args)
        store[name] = digest(value, np.concatenate([g[0].ravel(), g[1], g[2].ravel(), g[3]]))
    for name, args in forward_cases(raw):
        store[name] = digest(*old.old_forward(*args))
    for name, args in numeric_cases(raw):
        store[name] = digest(*old.old_numeric(*args))
    STORE.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")
    print(f"{len(store)} fingerprints written to {STORE}")


def series_case(name: str) -> bool:
    """A case whose arithmetic the cumulant series changed: numeric, cross-entropy without epsilon, exact."""
    return name.startswith("numeric/") and "/cross-entropy/" in name and "/exact/" in name


def refresh_series():  # pragma: no cover - run by hand when the series' arithmetic changes
    from gradsel_cli import data
    from helpers import numeric_blocks

    raw = data.load_mnist_raw()
    store = json.loads(STORE.read_text())
    changed = 0
    for name, args in numeric_cases(raw):
        now = digest(*numeric_blocks(*args))
        if now != store[name]:
            if not series_case(name):
                raise SystemExit(f"{name} differs but is not a series case: a bug, not a change of arithmetic")
            store[name], changed = now, changed + 1
    STORE.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")
    print(f"{changed} fingerprints of series cases rewritten in {STORE}")


if __name__ == "__main__":
    import sys

    refresh_series() if sys.argv[1:] == ["--series"] else main()
