"""seeding.py: one generator per (run seed, stream), reproducible and independent of every other stream."""

import numpy as np
import pytest

from gradsel_cli import seeding


def draws(seed, stream, n=8):
    return seeding.rng(seed, stream).random(n)


@pytest.mark.parametrize("stream", seeding.STREAMS)
def test_the_same_seed_and_stream_give_the_same_draws(stream):
    assert np.array_equal(draws(5, stream), draws(5, stream))


def test_every_stream_of_every_seed_draws_differently():
    seen = {(seed, stream): draws(seed, stream).tobytes() for seed in range(4) for stream in seeding.STREAMS}
    assert len(set(seen.values())) == len(seen)


def test_drawing_from_one_stream_never_shifts_another():
    alone = draws(3, "batches")
    init = seeding.rng(3, "init")
    init.normal(size=10_000)  # a bigger network draws more initial weights...
    assert np.array_equal(draws(3, "batches"), alone)  # ...and the mini-batches stay the same


def test_a_numpy_integer_seed_is_the_same_seed():
    assert np.array_equal(draws(np.int64(7), "dropout"), draws(7, "dropout"))


def test_an_unknown_stream_is_a_value_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown random stream 'weights'; known: init, subset"):
        seeding.rng(0, "weights")
