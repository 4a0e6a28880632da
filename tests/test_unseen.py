"""What the training images cannot see (numerics/unseen.py): the split of W1's change on the span of the
training images, and the network without its unseen part."""

import numpy as np
import pytest

from gradsel_cli import data
from gradsel_cli.config import TrainConfig
from gradsel_cli.core.network import init_params, loss
from gradsel_cli.numerics.training import train
from gradsel_cli.numerics.unseen import drop_unseen, split, unseen_split


def test_the_split_of_a_change_on_images_of_single_pixels_is_those_pixels_rows():
    x = np.zeros((3, 6))
    x[0, 1], x[1, 4], x[2, 1] = 1.0, 0.5, 2.0  # a repeated direction: the span has two dimensions
    change = np.arange(18.0).reshape(6, 3)
    seen, unseen = split(change, x)
    assert np.allclose(seen[[1, 4]], change[[1, 4]]) and np.allclose(seen[[0, 2, 3, 5]], 0.0)
    assert np.allclose(seen + unseen, change) and np.allclose(x @ unseen, 0.0, atol=1e-12)


def test_the_split_is_the_least_squares_projection_of_numpy():
    rng = np.random.default_rng(4)
    x, change = rng.random((5, 30)), rng.normal(size=(30, 7))
    coef, *_ = np.linalg.lstsq(x.T, change, rcond=None)  # the closest combination of the images
    seen, unseen = split(change, x)
    assert np.allclose(seen, x.T @ coef, atol=1e-12)
    assert np.allclose(unseen.T @ x.T, 0.0, atol=1e-12)


@pytest.mark.parametrize("method", ["analytic", "spsa"])
def test_backprop_changes_w1_only_where_the_training_images_see_and_a_random_source_does_not(mnist_raw, method):
    config = TrainConfig(method=method, shots=1, batch=4, hidden=8, iters=300, lr=0.01, test_limit=200)
    result = train(config, data=mnist_raw)
    init = init_params(config.hidden, seed=config.seed)
    x, y = data.few_shot(mnist_raw[0], mnist_raw[1], config.shots, config.subset, config.seed)
    seen, unseen = unseen_split(result.params, init, x)
    assert np.linalg.norm(seen) > 0
    if method == "analytic":  # every step is xᵀδ over training images
        assert np.linalg.norm(unseen) < 1e-12 * np.linalg.norm(seen)
    else:  # a random direction's length is mostly outside their span (10 of 784 dimensions)
        assert np.linalg.norm(unseen) > np.linalg.norm(seen)
    dropped = drop_unseen(result.params, init, x)
    assert loss(dropped, x, y) == pytest.approx(loss(result.params, x, y), rel=1e-12)
    assert np.linalg.norm(unseen_split(dropped, init, x)[1]) < 1e-12 * np.linalg.norm(seen)
    assert np.array_equal(dropped.W2, result.params.W2) and np.array_equal(dropped.b1, result.params.b1)
