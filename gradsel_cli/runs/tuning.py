"""Random search of learning rate and weight decay, scored on a held-out validation split.

The split never touches the test set: by default the network trains on the k
few-shot images and is scored on VAL_PER_CLASS further training images per
class, disjoint from the few-shot set; with ``val_per_class = 0`` one image
per class is held out of the k few-shot images instead (train on k - 1; so
few images that trials often tie). When the best trials tie, none is chosen.

Trials stored in a results file are not run (nor stored) again: the same
command resumes an interrupted search.
"""

import math

import numpy as np

from .. import data
from ..config import VAL_PER_CLASS, TrainConfig
from ..numerics.training import Dataset, train
from ..seeding import rng
from . import results
from .records import run_key, run_record


def validation_split(raw, config: TrainConfig, val_per_class: int = VAL_PER_CLASS) -> tuple[Dataset, str]:
    """(the Dataset to tune on, a description of the split)."""
    xtr, ytr, _, _ = raw
    if config.subset == "all":
        raise ValueError(
            "--subset all trains on every training image, which leaves none to validate on; "
            "tune with --subset first or random"
        )
    if val_per_class == 0:
        if config.shots < 2:
            raise ValueError(
                "holding a validation image out of the few-shot set needs --shots >= 2; "
                "or score on extra images with --val-per-class N"
            )
        idx = data.few_shot_indices(ytr, config.shots, config.subset, config.seed).reshape(data.N_CLASSES, -1)
        train_idx, val_idx = idx[:, :-1].ravel(), idx[:, -1]
        described = f"train on {config.shots - 1} per class, validate on the last of the {config.shots} few-shot images"
    else:
        smallest = int(np.bincount(ytr, minlength=data.N_CLASSES).min())
        if config.shots + val_per_class > smallest:
            raise ValueError(
                f"--shots {config.shots} plus --val-per-class {val_per_class} images per class is more "
                f"than the {smallest} of the smallest class; lower --val-per-class"
            )
        both = data.few_shot_indices(ytr, config.shots + val_per_class, config.subset, config.seed)
        both = both.reshape(data.N_CLASSES, -1)
        train_idx, val_idx = both[:, : config.shots].ravel(), both[:, config.shots :].ravel()
        described = f"train on {config.shots} per class, validate on {val_per_class} further images per class"
    ds = Dataset(data.to_float(xtr[train_idx]), ytr[train_idx], xtr[val_idx], ytr[val_idx])
    return ds, described


def log_uniform(gen: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(gen.uniform(math.log(lo), math.log(hi))))


def tune(
    base: TrainConfig,
    trials: int,
    lr_range: tuple[float, float],
    weight_decay_range: tuple[float, float],
    val_per_class: int = VAL_PER_CLASS,
    raw=None,
    results_path=None,
    progress=None,
    eval_points: int = 0,
) -> dict:
    """Run `trials` random (lr, weight decay) settings; the best by validation accuracy first. A trial already in
    `results_path` is read from it, not run again; `best` is None when no trial finished or the best ones tie
    (`tied`: their trial numbers). With `eval_points` > 0 each trial run also records its validation accuracy
    (``acc_curve``) and its accuracy on its training images (``train_acc_curve``) at that many iterations."""
    for name, (lo, hi) in (("lr range", lr_range), ("weight-decay range", weight_decay_range)):
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ValueError(f"{name} must be LOW,HIGH with 0 < LOW <= HIGH, got {lo},{hi}")
    stored, store = {}, None
    if results_path is not None:
        results.probe(results_path)
        stored = {run_key(r): r for r in results.load(results_path, redo=True)}
        store = results.Store(results_path)
    raw = data.load_mnist_raw() if raw is None else raw
    ds, described = validation_split(raw, base, val_per_class)
    gen = rng(base.seed, "tune")
    rows, reused, records = [], 0, []
    for n in range(trials):
        config = base.replace(
            lr=log_uniform(gen, *lr_range), weight_decay=log_uniform(gen, *weight_decay_range)
        ).validate()
        on = "validation: " + described
        record = stored.get(run_key({"config": config.to_dict(), "evaluated_on": on}))
        if record is not None:
            reused += 1
        else:
            record = run_record(train(config, ds, eval_points=eval_points))
            record["evaluated_on"] = on
            if store is not None:
                store.append(record)
        records.append(record)
        rows.append(
            {
                "trial": n,
                "lr": config.lr,
                "weight_decay": config.weight_decay,
                "val_accuracy": record["accuracy"],
                "final_loss": record["final_loss"],
                "diverged": record["diverged"],
            }
        )
        if progress:
            progress(n + 1, trials, f"lr {config.lr:.3g}, wd {config.weight_decay:.3g}")
    rows.sort(key=lambda r: -1.0 if r["val_accuracy"] is None else r["val_accuracy"], reverse=True)
    finished = [r for r in rows if not r["diverged"]]
    tied = [r["trial"] for r in finished if r["val_accuracy"] == finished[0]["val_accuracy"]] if finished else []
    return {
        "split": described,
        "config": base.to_dict(),
        "trials": rows,
        "finished": len(finished),
        "best": finished[0] if len(tied) == 1 else None,
        "tied": tied if len(tied) > 1 else [],
        "stored_before": reused,
        "runs": records,  # every trial's run record, in trial order (what `gradsel runs` reads of tune --json)
    }


def tie_message(summary: dict) -> str | None:
    """The line when the best trials tie (none is chosen), else None."""
    tied = summary.get("tied") or []
    if not tied:
        return None
    acc = summary["trials"][0]["val_accuracy"]
    return (
        f"trials {', '.join(map(str, sorted(tied)))} tie at validation accuracy {acc:.4f}: none is chosen; "
        "score on more images (a larger --val-per-class) or try more --trials"
    )


def nothing_worked(summary: dict) -> str | None:
    """The message when no trial of a tune finished (every one diverged), else None."""
    if summary["best"] is not None or summary.get("tied"):
        return None
    return (
        f"no setting worked: all {len(summary['trials'])} trials diverged; lower --lr-range (and --weight-decay-range)"
    )
