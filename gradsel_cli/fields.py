"""A TrainConfig field together with its command-line option, and the check of a value against it.

Apart from config.py so that the gradient sources (sources/) can declare their own options without
importing the configuration they extend. No heavy imports.
"""

import math
from dataclasses import field


def option(
    default,
    help: str,
    *,
    choices: tuple | None = None,
    low=None,
    high=None,
    kind: str | None = None,
    formerly: tuple[str, ...] = (),
):
    """A TrainConfig field together with its command-line option: the one place for its default and help.

    kind: "positive" (finite, > 0), "nonneg" (finite, >= 0), "fraction" (in [0, 1)); whole numbers take
    low/high bounds; choices name the allowed strings. The CLI builds ``--field-name`` from this.
    formerly: the field's former names: stored configurations that say them are read as this field
    (TrainConfig.from_dict), and the command line still takes their flags.
    """
    metadata = {"help": help, "choices": choices, "low": low, "high": high, "kind": kind, "formerly": formerly}
    return field(default=default, metadata=metadata)


KINDS = {
    "positive": ("positive and finite", lambda x: math.isfinite(x) and x > 0),
    "nonneg": ("zero or more and finite", lambda x: math.isfinite(x) and x >= 0),
    "fraction": ("in [0, 1)", lambda x: 0 <= x < 1),
}  # option(kind=...): what the value must be, the test


def field_problem(f, value) -> str | None:
    """Why `value` is not allowed in TrainConfig field `f` by the field's option() metadata (its choices, its
    whole-number bounds, its kind, or true/false), or None. The command line's types read the same metadata."""
    m, name = f.metadata, f.name
    if m["choices"]:
        if value not in m["choices"]:
            return f"unknown {name.replace('_', ' ')} {value!r}; choose one of: {', '.join(m['choices'])}"
        return None
    if f.type is str:  # free text, checked where it is read (TrainConfig.validate)
        return None if isinstance(value, str) else f"{name} must be text, got {value!r}"
    if f.type is bool:
        return None if isinstance(value, bool) else f"{name} must be true or false, got {value!r}"
    if f.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be a whole number, got {value!r}"
        low, high = m["low"], m["high"]
        if low is not None and high is not None and not low <= value <= high:
            return f"{name} must be between {low:,} and {high:,}, got {value:,}"
        if low is not None and value < low:
            return f"{name} must be {'0 or more' if low == 0 else f'at least {low:,}'}, got {value:,}"
        return None
    what, test = KINDS[m["kind"]]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not test(value):
        return f"{name} must be {what}, got {value!r}"
    return None
