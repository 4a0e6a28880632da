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


def test_a_sources_draws_are_addressed_by_iteration_however_the_run_is_split():
    whole = seeding.draws(4, "some-source", 0, 10, 3)
    assert whole.shape == (10, 3) and whole.dtype == np.uint64
    parts = [seeding.draws(4, "some-source", t0, n, 3) for t0, n in ((0, 1), (1, 4), (5, 5))]
    assert np.array_equal(np.concatenate(parts), whole)
    one_at_a_time = np.concatenate([seeding.draws(4, "some-source", t, 1, 3) for t in range(10)])
    assert np.array_equal(one_at_a_time, whole)


def test_each_source_and_seed_draws_its_own_words_and_none_are_drawn_when_none_are_asked_for():
    mine, other, seed = (seeding.draws(s, name, 0, 4, 2) for s, name in ((1, "a"), (1, "b"), (2, "a")))
    assert len({mine.tobytes(), other.tobytes(), seed.tobytes()}) == 3
    assert seeding.draws(1, "a", 7, 5, 0).shape == (5, 0)
    # the words are the raw output of the "draws" stream's generator: none of another stream's
    assert not np.array_equal(mine.ravel(), np.random.PCG64(np.random.SeedSequence(1)).random_raw(8))
