"""Named random streams derived from one run seed.

Every random element of a run (initial weights, few-shot subset, mini-batch
indices, dropout masks, a gradient source's draws, ...) draws from its own
stream, so adding draws to one stream never shifts another: the same seed gives
every method the same weights, subset and batches (a paired comparison).

A gradient source's per-iteration draws (``draws``) come from a sub-stream of
the "draws" stream keyed by the source's name and are addressed by iteration:
the words of iteration t are the same whichever method computes the source,
whichever other sources run beside it, and however the run is split into calls.
"""

import zlib

import numpy as np

STREAMS = ("init", "subset", "batches", "dropout", "tune", "lab", "draws")  # appended: a new stream shifts none


def _stream(seed: int, stream: str, *key: int) -> np.random.SeedSequence:
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; known: {', '.join(STREAMS)}")
    return np.random.SeedSequence(int(seed), spawn_key=(STREAMS.index(stream), *key))


def rng(seed: int, stream: str) -> np.random.Generator:
    """The generator of `stream` for run seed `seed`."""
    return np.random.default_rng(_stream(seed, stream))


def draws(seed: int, source: str, t0: int, iterations: int, per_iteration: int) -> np.ndarray:
    """The words (uint64) gradient source `source` draws at iterations t0 + 1 ... t0 + `iterations` of a run of
    seed `seed`, `per_iteration` each, as an (iterations, per_iteration) array. Iteration t's words are the
    stream's words (t - 1) * per_iteration onwards: the generator is advanced to them, not drawn through."""
    if per_iteration == 0 or iterations == 0:
        return np.zeros((iterations, per_iteration), np.uint64)
    bits = np.random.PCG64(_stream(seed, "draws", zlib.crc32(source.encode())))
    bits.advance(t0 * per_iteration)
    return bits.random_raw(iterations * per_iteration).reshape(iterations, per_iteration)  # uint64 already
