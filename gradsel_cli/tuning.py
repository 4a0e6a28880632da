"""Random search of learning rate and weight decay, scored on a held-out validation split.

The split never touches the test set: by default one image per class is held
out of the k few-shot images (train on k - 1); with ``val_per_class = N`` the
network trains on all k and is scored on N further training images per class,
disjoint from the few-shot set.
"""

import math

import numpy as np

from . import data, results
from .config import TrainConfig
from .seeding import rng
from .training import Dataset, train


def validation_split(raw, config: TrainConfig, val_per_class: int = 0) -> tuple[Dataset, str]:
    """(the Dataset to tune on, a description of the split)."""
    xtr, ytr, _, _ = raw
    if val_per_class == 0:
        if config.shots < 2:
            raise ValueError("holding a validation image out of the few-shot set needs --shots >= 2; "
                             "or score on extra images with --val-per-class N")
        idx = data.few_shot_indices(ytr, config.shots, config.subset, config.seed).reshape(data.N_CLASSES, -1)
        train_idx, val_idx = idx[:, :-1].ravel(), idx[:, -1]
        described = f"train on {config.shots - 1} per class, validate on the last of the {config.shots} few-shot images"
    else:
        smallest = int(np.bincount(ytr, minlength=data.N_CLASSES).min())
        if config.shots + val_per_class > smallest:
            raise ValueError(f"--shots {config.shots} plus --val-per-class {val_per_class} images per class is more "
                             f"than the {smallest} of the smallest class; lower --val-per-class")
        both = data.few_shot_indices(ytr, config.shots + val_per_class, config.subset, config.seed)
        both = both.reshape(data.N_CLASSES, -1)
        train_idx, val_idx = both[:, :config.shots].ravel(), both[:, config.shots:].ravel()
        described = f"train on {config.shots} per class, validate on {val_per_class} further images per class"
    ds = Dataset(data.to_float(xtr[train_idx]), ytr[train_idx], xtr[val_idx], ytr[val_idx])
    return ds, described


def log_uniform(gen: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(gen.uniform(math.log(lo), math.log(hi))))


def tune(base: TrainConfig, trials: int, lr_range: tuple[float, float], weight_decay_range: tuple[float, float],
         val_per_class: int = 0, raw=None, results_path=None, progress=None) -> dict:
    """Run `trials` random (lr, weight decay) settings; the best by validation accuracy first."""
    for name, (lo, hi) in (("lr range", lr_range), ("weight-decay range", weight_decay_range)):
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ValueError(f"{name} must be LOW,HIGH with 0 < LOW <= HIGH, got {lo},{hi}")
    if results_path is not None:
        results.probe(results_path)
    raw = data.load_mnist_raw() if raw is None else raw
    ds, described = validation_split(raw, base, val_per_class)
    gen = rng(base.seed, "tune")
    rows = []
    for n in range(trials):
        config = base.replace(lr=log_uniform(gen, *lr_range),
                              weight_decay=log_uniform(gen, *weight_decay_range)).validate()
        result = train(config, ds)
        record = results.run_record(result)
        record["evaluated_on"] = "validation: " + described
        if results_path is not None:
            results.append(results_path, record)
        rows.append({"trial": n, "lr": config.lr, "weight_decay": config.weight_decay,
                     "val_accuracy": record["accuracy"], "final_loss": record["final_loss"],
                     "diverged": record["diverged"]})
        if progress:
            progress(n + 1, trials, f"lr {config.lr:.3g}, wd {config.weight_decay:.3g}")
    rows.sort(key=lambda r: -1.0 if r["val_accuracy"] is None else r["val_accuracy"], reverse=True)
    finished = [r for r in rows if not r["diverged"]]
    return {"split": described, "config": base.to_dict(), "trials": rows, "best": finished[0] if finished else None}


def nothing_worked(summary: dict) -> str | None:
    """The message when no trial of a tune finished (every one diverged), else None."""
    if summary["best"] is not None:
        return None
    return (f"no setting worked: all {len(summary['trials'])} trials diverged; lower --lr-range (and "
            "--weight-decay-range)")
