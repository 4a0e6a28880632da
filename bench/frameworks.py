"""Where gradsel's gradients stand: against PyTorch and JAX, analytic and finite-difference.

Same network (784 -> H sigmoid -> 10, mean softmax cross-entropy), same real
MNIST batch, float64, CPU, one thread each, all in one process. The analytic
gradient is timed against PyTorch autograd and JAX jit(grad); gradsel's
numeric gradient against the best structured central differences PyTorch and
JAX can express: a perturbed W1[i, j] moves only hidden unit j of the samples
whose pixel i is lit, so each (lit pixel of a sample, hidden unit) pair costs
one shifted softmax, evaluated all at once (JAX: vmapped and jitted; PyTorch:
broadcast) and scattered into the gradient; W2 and b2 alike by logit.
Timings run in interleaved rounds (each round times every contender in turn)
and the table gives medians. Frameworks not installed are skipped
(`pip install 'gradsel[frameworks]'`). Documentation, not a test.

    python bench/frameworks.py --sizes 20:1,50:8,100:32 --out bench/frameworks.md
    python bench/frameworks.py --textbook 10000 --rounds 2 --out bench/textbook.md   # chapter 4's training
"""

import argparse
import datetime
import os
import platform
import statistics
import time

import numpy as np

# JAX (XLA) on one thread too, like the others; must be set before jax is imported.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
).strip()

import gradsel_cli as gs
from gradsel_cli import data
from gradsel_cli.core import threads
from gradsel_cli.numerics.benchmark import cpu_name

STEP = 1e-4  # the central-difference step of gradsel's default
SETTINGS = gs.settings(gs.TrainConfig(fd_step=STEP))


def gradsel_analytic(params, x, y):
    return lambda: gs.analytic_gradient(params, x, y)


def gradsel_numeric(params, x, y):
    return lambda: gs.numeric_gradient(params, x, y, SETTINGS)


def _lit(x):
    """Lit (sample, pixel, value) entries plus one bias entry (pixel 784, value 1) per sample."""
    b, i = np.nonzero(x)
    B, n_in = x.shape
    rows = np.concatenate([b, np.arange(B)])
    cols = np.concatenate([i, np.full(B, n_in)])
    return rows, cols, np.concatenate([x[b, i], np.ones(B)])


def torch_analytic(params, x, y):
    import torch

    torch.set_num_threads(1)
    W1, b1, W2, b2 = (
        torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (params.W1, params.b1, params.W2, params.b2)
    )
    xt, yt = torch.tensor(x), torch.tensor(y)

    def step():
        for w in (W1, b1, W2, b2):
            w.grad = None
        logits = torch.sigmoid(xt @ W1 + b1) @ W2 + b2
        torch.nn.functional.cross_entropy(logits, yt).backward()
        return W1.grad

    return step


def torch_numeric(params, x, y):
    import torch

    torch.set_num_threads(1)
    W1, b1, W2, b2 = (torch.tensor(a, dtype=torch.float64) for a in (params.W1, params.b1, params.W2, params.b2))
    xt, yt = torch.tensor(x), torch.tensor(y)
    rows, cols, vals = (torch.tensor(a) for a in _lit(x))
    B, n_in = x.shape
    H, K = W2.shape
    eye = torch.eye(K, dtype=torch.float64)
    onehot = eye[yt]  # (B, K)
    wy = W2[:, yt[rows]].T  # (nnz, H): W2[j, label of the entry's sample]

    @torch.no_grad()
    def step():
        a1 = xt @ W1 + b1  # (B, H)
        z1 = torch.sigmoid(a1)
        a2 = z1 @ W2 + b2  # (B, K)
        a_lit, z_lit, a2_lit = a1[rows], z1[rows], a2[rows]  # (nnz, H), (nnz, H), (nnz, K)
        dzp = torch.sigmoid(a_lit + STEP * vals[:, None]) - z_lit
        dzm = torch.sigmoid(a_lit - STEP * vals[:, None]) - z_lit

        def lse(dz):  # (nnz, H): log-sum-exp of the entry's logits with hidden unit j moved by dz
            return torch.logsumexp(a2_lit[:, None, :] + dz[:, :, None] * W2, dim=-1)

        diff = lse(dzp) - lse(dzm) - (dzp - dzm) * wy
        g1 = torch.zeros(n_in + 1, H, dtype=torch.float64).index_add_(0, cols, diff) / (2 * STEP * B)
        z = torch.cat([z1, torch.ones(B, 1, dtype=torch.float64)], 1)  # (B, H + 1): W2's rows, then b2
        shift = STEP * z[:, :, None, None] * eye  # (B, H + 1, K, K): logit k moved
        moved = a2[:, None, None, :]
        d = (
            torch.logsumexp(moved + shift, -1)
            - torch.logsumexp(moved - shift, -1)
            - 2 * STEP * z[:, :, None] * onehot[:, None, :]
        )  # (B, H + 1, K)
        return g1, d.sum(0) / (2 * STEP * B)

    return step


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def jax_analytic(params, x, y):
    jax = _jax()
    import jax.numpy as jnp

    def loss(p, x, y):
        W1, b1, W2, b2 = p
        logits = jax.nn.sigmoid(x @ W1 + b1) @ W2 + b2
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[jnp.arange(y.shape[0]), y])

    grad = jax.jit(jax.grad(loss))
    p = tuple(jnp.asarray(a) for a in (params.W1, params.b1, params.W2, params.b2))
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    return lambda: jax.block_until_ready(grad(p, xj, yj))


def jax_numeric(params, x, y):
    jax = _jax()
    import jax.numpy as jnp

    B, n_in = x.shape
    H, K = params.W2.shape

    def entry(a_bj, z_bj, a2_b, w2_j, wy, v):
        """Loss change of one sample with one lit pixel's weight into unit j moved by +-STEP."""
        dzp = jax.nn.sigmoid(a_bj + STEP * v) - z_bj
        dzm = jax.nn.sigmoid(a_bj - STEP * v) - z_bj
        return (jax.nn.logsumexp(a2_b + dzp * w2_j) - jax.nn.logsumexp(a2_b + dzm * w2_j)) - (dzp - dzm) * wy

    per_unit = jax.vmap(entry, in_axes=(0, 0, None, 0, 0, None))  # over j
    per_entry = jax.vmap(per_unit, in_axes=(0, 0, 0, None, 0, 0))  # over the lit entries

    def logit(a2_b, z, k, y_b):
        """Loss change of one sample with logit k moved by +-STEP z (W2[j, k], z = z1[b, j]; b2[k], z = 1)."""
        e_k = jax.nn.one_hot(k, K, dtype=a2_b.dtype)
        return (
            jax.nn.logsumexp(a2_b + STEP * z * e_k)
            - jax.nn.logsumexp(a2_b - STEP * z * e_k)
            - 2 * STEP * z * (k == y_b)
        )

    per_k = jax.vmap(logit, in_axes=(None, None, 0, None))
    per_j = jax.vmap(per_k, in_axes=(None, 0, None, None))
    per_b = jax.vmap(per_j, in_axes=(0, 0, None, 0))

    @jax.jit
    def grad(p, x, y, rows, cols, vals):
        W1, b1, W2, b2 = p
        a1 = x @ W1 + b1
        z1 = jax.nn.sigmoid(a1)
        a2 = z1 @ W2 + b2
        diff = per_entry(a1[rows], z1[rows], a2[rows], W2, W2[:, y[rows]].T, vals)  # (nnz, H)
        g1 = jnp.zeros((n_in + 1, H)).at[cols].add(diff) / (2 * STEP * B)
        z = jnp.concatenate([z1, jnp.ones((B, 1))], 1)
        g2 = per_b(a2, z, jnp.arange(K), y).sum(0) / (2 * STEP * B)
        return g1, g2

    p = tuple(jnp.asarray(a) for a in (params.W1, params.b1, params.W2, params.b2))
    args = (jnp.asarray(x), jnp.asarray(y), *tuple(jnp.asarray(a) for a in _lit(x)))
    return lambda: jax.block_until_ready(grad(p, *args))


CONTENDERS = {  # name: (factory, module whose version is reported)
    "gradsel analytic": (gradsel_analytic, "gradsel_cli"),
    "PyTorch autograd": (torch_analytic, "torch"),
    "JAX jit(grad)": (jax_analytic, "jax"),
    "gradsel numeric": (gradsel_numeric, "gradsel_cli"),
    "PyTorch FD over x≠0": (torch_numeric, "torch"),
    "JAX FD over x≠0": (jax_numeric, "jax"),
}


def check_numeric(fns, params, x, y):
    """The structured differences agree with gradsel's numeric gradient (they compute the same thing)."""
    g = gs.numeric_gradient(params, x, y, SETTINGS)
    want = np.concatenate([g.W1, g.b1[None]]), np.concatenate([g.W2, g.b2[None]])
    for name in ("PyTorch FD over x≠0", "JAX FD over x≠0"):
        if name in fns:
            got = [np.asarray(a) for a in fns[name]()]
            err = max(float(np.max(np.abs(a - b))) for a, b in zip(got, want))
            assert err < 1e-8, f"{name} differs from gradsel numeric by {err}"


def interleaved(fns: dict, rounds: int, calls: int) -> dict:
    """Median seconds per call of each function, timed in `rounds` rounds of `calls` calls each,
    every function in turn within a round (so that a busy spell of the machine hits all alike)."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up, compilation
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(calls):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _fmt(seconds):
    return f"{seconds * 1e6:.0f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def textbook(iters: int, rounds: int) -> str:
    """The textbook's chapter-4 training (all 60,000 training images, B = 100, H = 50, lr 0.1, analytic) on one
    thread: gradsel train against the NumPy loop (gradsel_cli.numerics.benchmark.textbook), as Markdown."""
    from gradsel_cli.numerics import benchmark

    r = benchmark.textbook(iters, rounds)
    cpu = f"{cpu_name()}, {platform.machine()}"
    blas = "one BLAS thread" if r["blas_threads"] == 1 else "BLAS threads as the environment sets them"
    ours, loop, theirs = r["gradsel_seconds"], r["gradsel_iterations_seconds"], r["numpy_iterations_seconds"]
    return "\n".join(
        [
            f"The textbook's chapter-4 training: all 60,000 training images, B = 100, H = 50, lr 0.1, {iters:,} "
            f"iterations, analytic, float64, the same initial weights and batches; best of {rounds} interleaved "
            f"rounds, one thread ({blas}), {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), "
            f"Python {platform.python_version()}, NumPy {np.__version__}.",
            "",
            "| | whole run | its iterations | per iteration | test accuracy |",
            "|---|---:|---:|---:|---:|",
            f"| gradsel train --subset all --batch 100 --hidden 50 --method analytic | {ours:.2f} s "
            f"| {loop:.2f} s | {loop / iters * 1e3:.3f} ms | {r['gradsel_accuracy']:.4f} |",
            f"| the NumPy loop (the textbook's way) | — | {theirs:.2f} s | {theirs / iters * 1e3:.3f} ms "
            f"| {r['numpy_accuracy']:.4f} |",
            "",
            f"NumPy / gradsel, iterations: {theirs / loop:.2f}×; NumPy's iterations / gradsel's whole run: "
            f"{theirs / ours:.2f}×. gradsel's whole run is the train() call: its training set (all 60,000 "
            "images) made float64 and listed by lit pixel, the iterations, the final loss and the test evaluation.",
        ]
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=10, help="calls per contender per round")
    ap.add_argument("--sizes", default="20:1,50:8,100:32", help="H:B pairs, comma-separated")
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--textbook",
        type=int,
        metavar="ITERS",
        default=None,
        help="instead: the textbook's chapter-4 training (all training images, B 100, H 50) for ITERS iterations, "
        "gradsel against a plain NumPy loop (--rounds of them)",
    )
    args = ap.parse_args()
    threads.set_threads(1)
    if args.textbook is not None:
        text = textbook(args.textbook, args.rounds) + "\n"
        if args.out:
            with open(args.out, "w") as fh:
                fh.write(text)
        print(text)
        return
    xtr, ytr, _, _ = data.load_mnist_raw()
    available, versions = {}, {}
    for name, (factory, module) in CONTENDERS.items():
        try:
            versions[module] = __import__(module).__version__
            available[name] = factory
        except ImportError:
            print(f"{name}: {module} not installed, skipped")
    sizes = [tuple(map(int, pair.split(":"))) for pair in args.sizes.split(",")]
    rows = []
    for h, b in sizes:
        params = gs.init_params(h, seed=0)
        x, y = data.to_float(xtr[:b]), ytr[:b].astype(np.int64)
        fns = {name: factory(params, x, y) for name, factory in available.items()}
        check_numeric(fns, params, x, y)
        rows.append((h, b, interleaved(fns, args.rounds, args.calls)))
    cpu = f"{cpu_name()}, {platform.machine()}"
    lines = [
        f"Median per call, {args.rounds} interleaved rounds of {args.calls} calls, float64, CPU, one thread each, "
        f"{datetime.date.today()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}; "
        + ", ".join(f"{m} {v}" for m, v in versions.items())
        + ". Real MNIST batches (the first B training "
        "images), sigmoid, cross-entropy, central differences with step 1e-4.",
        "",
        "| H, B | gradsel analytic | PyTorch autograd | JAX jit(grad) | gradsel numeric | JAX FD over x≠0 "
        "| numeric / analytic |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    get = lambda t, n: _fmt(t[n]) if n in t else "—"  # noqa: E731
    for h, b, t in rows:
        lines.append(
            f"| {h}, {b} | "
            + " | ".join(
                get(t, n)
                for n in ("gradsel analytic", "PyTorch autograd", "JAX jit(grad)", "gradsel numeric", "JAX FD over x≠0")
            )
            + f" | {t['gradsel numeric'] / t['gradsel analytic']:.1f} |"
        )
    lines += [
        "",
        "Against the best peer (its time / gradsel's; above 1: gradsel faster):",
        "",
        "| H, B | PyTorch FD over x≠0 | analytic: PyTorch / gradsel | analytic: JAX / gradsel "
        "| numeric: best peer FD / gradsel |",
        "|---|---:|---:|---:|---:|",
    ]
    for h, b, t in rows:

        def ratio(n, g, t=t):
            return f"{t[n] / t[g]:.2f}×" if n in t else "—"

        peers = [t[n] for n in ("PyTorch FD over x≠0", "JAX FD over x≠0") if n in t]
        best = f"{min(peers) / t['gradsel numeric']:.1f}×" if peers else "—"
        lines.append(
            f"| {h}, {b} | {get(t, 'PyTorch FD over x≠0')} | {ratio('PyTorch autograd', 'gradsel analytic')} "
            f"| {ratio('JAX jit(grad)', 'gradsel analytic')} | {best} |"
        )
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
