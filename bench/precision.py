"""How far each gradient source is from the gradient in higher precision: the measure behind the accuracy
sentences of docs/sources/complex-step.md and the guide.

For the first mini-batch of a run (as `gradsel gradcheck` takes it), at the initial weights and after training,
each source's float64 gradient is compared with backpropagation evaluated in NumPy's long double (the x87
80-bit format on x86-64, eps 1.1e-19; where long double is float64, as on ARM macOS, the reference is no more
precise and the script says so): ||g - g_ref|| / ||g_ref||. The reference is tests/reference.py's NumPy twin of
backpropagation, run on long-double arrays. Documentation, not a test.

    python bench/precision.py --iters 2000,10000
"""

import argparse
import datetime
import pathlib
import platform
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
import reference
from gradsel_cli import data, sources
from gradsel_cli.config import TrainConfig
from gradsel_cli.core import network
from gradsel_cli.numerics import loop
from gradsel_cli.numerics.training import Dataset, batch_indices, train


def flat(blocks) -> np.ndarray:
    return np.concatenate([np.ravel(b) for b in blocks])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", default="2000,10000", help="training lengths, comma-separated")
    ap.add_argument("--shots", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=50)
    args = ap.parse_args()
    eps = np.finfo(np.longdouble).eps
    print(f"# {datetime.date.today()}, {platform.machine()}, long double eps {eps:.2g}, numpy {np.__version__}")
    if eps >= np.finfo(np.float64).eps:
        print("long double is float64 here: the reference is no more precise than the sources; nothing to measure")
        return
    raw = data.load_mnist_raw()
    names = list(sources.REGISTRY)
    print("| iterations | weights | " + " | ".join(names) + " |")
    print("|---:|---|" + "---:|" * len(names))
    for iters in (int(n) for n in args.iters.split(",")):
        config = TrainConfig(
            method=sources.exact(), shots=args.shots, batch=args.batch, hidden=args.hidden, iters=iters
        )
        ds = Dataset.for_config(raw, config)
        idx = batch_indices(config, len(ds.y_train))[0]
        x, y = ds.x_train[idx], ds.y_train[idx]
        start = network.init_params(config.hidden, config.seed, config.init_std, config.init, dtype=config.precision)
        for state, params in (("initial", start), ("trained", train(config, ds).params)):
            blocks = [params.W1, params.b1, params.W2, params.b2]
            ref = flat(
                reference.analytic_gradient([b.astype(np.longdouble) for b in blocks], x.astype(np.longdouble), y)
            )
            errors = []
            for name in names:
                c = config.replace(method=name)
                g, _ = sources.get(name).gradient(params, x, y, loop.settings(c), None)
                got = flat([g.W1, g.b1, g.W2, g.b2]).astype(np.longdouble)
                errors.append(float(np.linalg.norm(got - ref) / np.linalg.norm(ref)))
            print(f"| {iters:,} | {state} | " + " | ".join(f"{e:.2g}" for e in errors) + " |")


if __name__ == "__main__":
    main()
