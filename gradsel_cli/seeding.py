"""Named random streams derived from one run seed.

Every random element of a run (initial weights, few-shot subset, mini-batch
indices, dropout masks, ...) draws from its own stream, so adding draws to one
stream never shifts another: the same seed gives every method the same
weights, subset and batches (a paired comparison).
"""

import numpy as np

STREAMS = ("init", "subset", "batches", "dropout", "tune", "lab")  # appended: a new stream shifts none


def rng(seed: int, stream: str) -> np.random.Generator:
    """The generator of `stream` for run seed `seed`."""
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; known: {', '.join(STREAMS)}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(STREAMS.index(stream),)))
