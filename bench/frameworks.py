"""Where gradsel's analytic gradient stands: against PyTorch autograd and JAX jit(grad).

Same network (784 -> H sigmoid -> 10, mean softmax cross-entropy), same real
MNIST batch, float64, CPU. Each framework is timed when it is installed, as the
median of repeated calls after a warm-up. Writes a markdown table (stdout, or
--out FILE). Documentation of where gradsel stands, not a test.

    python bench/frameworks.py --hidden 20,50 --batch 1,8,32 --out bench/frameworks.md
"""

import argparse
import platform


import gradsel_cli as gs
from gradsel_cli import data
from gradsel_cli.benchmark import median_time


def gradsel_timer(params, x, y):
    return lambda: gs.analytic_gradient(params, x, y)


def torch_timer(params, x, y):
    import torch

    torch.set_num_threads(1)
    W1, b1, W2, b2 = (torch.tensor(a, dtype=torch.float64, requires_grad=True)
                      for a in (params.W1, params.b1, params.W2, params.b2))
    xt, yt = torch.tensor(x), torch.tensor(y)

    def step():
        for w in (W1, b1, W2, b2):
            w.grad = None
        logits = torch.sigmoid(xt @ W1 + b1) @ W2 + b2
        torch.nn.functional.cross_entropy(logits, yt).backward()
        return W1.grad

    return step, torch.__version__


def jax_timer(params, x, y):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def loss(p, x, y):
        W1, b1, W2, b2 = p
        logits = jax.nn.sigmoid(x @ W1 + b1) @ W2 + b2
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[jnp.arange(y.shape[0]), y])

    grad = jax.jit(jax.grad(loss))
    p = tuple(jnp.asarray(a) for a in (params.W1, params.b1, params.W2, params.b2))
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    return (lambda: jax.block_until_ready(grad(p, xj, yj))), jax.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", default="20,50")
    ap.add_argument("--batch", default="1,8,32")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    xtr, ytr, _, _ = data.load_mnist_raw()
    frameworks = {"gradsel (Numba)": lambda p, x, y: (gradsel_timer(p, x, y), gs.__version__)}
    for name, factory in (("PyTorch autograd", torch_timer), ("JAX jit(grad)", jax_timer)):
        try:
            factory(gs.init_params(2), data.to_float(xtr[:1]), ytr[:1])
            frameworks[name] = factory
        except ImportError:
            print(f"{name}: not installed, skipped")
    rows, versions = [], {}
    for h in map(int, args.hidden.split(",")):
        for b in map(int, args.batch.split(",")):
            params = gs.init_params(h, seed=0)
            x, y = data.to_float(xtr[:b]), ytr[:b]
            times = {}
            for name, factory in frameworks.items():
                fn, versions[name] = factory(params, x, y)
                times[name] = median_time(fn, args.repeat)
            rows.append((h, b, times))
    names = list(frameworks)
    lines = [f"Analytic gradient, median of {args.repeat} calls, float64, CPU, one thread each "
             f"({platform.processor() or platform.machine()}, Python {platform.python_version()}; "
             + ", ".join(f"{n} {v}" for n, v in versions.items()) + ")", "",
             "| H | B | " + " | ".join(names) + " | fastest |", "|---:|---:|" + "---:|" * (len(names) + 1)]
    for h, b, times in rows:
        best = min(times, key=times.get)
        lines.append(f"| {h} | {b} | " + " | ".join(f"{times[n] * 1e6:.1f} µs" for n in names) + f" | {best} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
