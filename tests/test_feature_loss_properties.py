"""Hypothesis properties of the loss: finite, non-negative, blind to the order of the batch."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from gradsel_cli.core import network
from helpers import as_blocks, config_settings, random_params

PERMUTATION_RTOL = 1e-13  # the mean is summed serially, so a new order may change the last bits
REFERENCE_RTOL = 1e-12

PROPERTY_SETTINGS = settings(max_examples=30, deadline=None)


@st.composite
def problems(draw):
    """(params, x, y, activation): random shapes, weights from tiny to huge, sparse images in [0, 1]."""
    n_in = draw(st.sampled_from([1, 5, 30, 784]))
    hidden = draw(st.integers(1, 7))
    batch = draw(st.integers(1, 6))
    std = 10.0 ** draw(st.floats(-3, 3))  # up to 1e3: logits far beyond exp's range
    seed = draw(st.integers(0, 2**32 - 1))
    zeros = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
    act = draw(st.sampled_from(list(network.ACTIVATION_CODES)))
    gen = np.random.default_rng(seed)
    x = gen.uniform(size=(batch, n_in)) * (gen.uniform(size=(batch, n_in)) >= zeros)
    y = gen.integers(0, 10, batch)
    return random_params(hidden, n_in=n_in, std=std, seed=seed), x, y, act


@PROPERTY_SETTINGS
@given(problems())
def test_loss_is_finite_and_non_negative(problem):
    params, x, y, act = problem
    value = network.loss(params, x, y, config_settings(activation=act))
    assert np.isfinite(value)
    assert value >= 0.0


@PROPERTY_SETTINGS
@given(problems(), st.randoms(use_true_random=False))
def test_loss_is_invariant_to_permuting_the_batch(problem, random):
    params, x, y, act = problem
    order = list(range(len(y)))
    random.shuffle(order)
    value = network.loss(params, x, y, config_settings(activation=act))
    shuffled = network.loss(params, x[order], y[order], config_settings(activation=act))
    assert np.isclose(shuffled, value, rtol=PERMUTATION_RTOL, atol=0.0)


@PROPERTY_SETTINGS
@given(problems())
def test_loss_matches_reference_for_any_scale(problem):
    params, x, y, act = problem
    logits = ref.forward(as_blocks(params), x, act)[2]
    # a loss of O(1) from logits of O(1e6) is a difference of large numbers: rounding scales with the logits
    atol = REFERENCE_RTOL * np.abs(logits).max()
    assert np.isclose(
        network.loss(params, x, y, config_settings(activation=act)),
        ref.loss(as_blocks(params), x, y, act),
        rtol=REFERENCE_RTOL,
        atol=atol,
    )


@PROPERTY_SETTINGS
@given(problems())
def test_repeating_the_batch_leaves_the_mean_loss_and_gradient(problem):
    params, x, y, act = problem
    s = config_settings(activation=act)
    value, g = network.loss(params, x, y, s), network.analytic_gradient(params, x, y, s)
    value2 = network.loss(params, np.vstack([x, x]), np.concatenate([y, y]), s)
    g2 = network.analytic_gradient(params, np.vstack([x, x]), np.concatenate([y, y]), s)
    assert np.isclose(value2, value, rtol=PERMUTATION_RTOL, atol=0.0)
    assert np.allclose(g2.flat, g.flat, rtol=1e-12, atol=1e-12 * np.abs(g.flat).max())
