"""The Params object as a person uses it: unpacking into the four blocks, and a readable repr."""

import numpy as np

from gradsel_cli import network


def test_params_unpack_into_views_of_the_flat_vector():
    params = network.init_params(hidden=50, seed=0)
    W1, b1, W2, b2 = params
    assert (W1.shape, b1.shape, W2.shape, b2.shape) == ((784, 50), (50,), (50, 10), (10,))
    assert all(np.shares_memory(block, params.flat) for block in (W1, b1, W2, b2))
    W1[0, 0] = 7.0
    assert params.flat[0] == 7.0
    assert [a.tobytes() for a in params] == [a.tobytes() for a in params.blocks().values()]


def test_batch_norm_params_unpack_into_the_same_four_blocks():
    params = network.init_params(hidden=3, batch_norm=True)
    W1, b1, W2, b2 = params
    assert W1.shape == (784, 3) and b2.shape == (10,)
    assert list(params.blocks()) == ["W1", "b1", "W2", "b2", "gamma", "beta"]


def test_params_repr_names_shapes_hidden_units_and_batch_norm():
    text = repr(network.init_params(hidden=50, seed=0))
    assert text.startswith("Params(784→50→10")
    assert "50 hidden units" in text and "no batch norm" in text and "39,760 values" in text
    assert "W1 (784, 50)" in text and "b2 (10,)" in text
    assert len(text) < 200  # not a dump of 39,760 numbers
    bn = repr(network.init_params(hidden=3, batch_norm=True))
    assert "batch norm" in bn and "no batch norm" not in bn and "gamma (3,)" in bn
