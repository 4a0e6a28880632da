"""The spsa source's own options (sources/spsa.py): every distribution and scheme against the NumPy twin on the
same directions, and their errors. What it shares with the forward gradient: tests/test_sources_random.py; its
kernel alone: tests/test_kernel_spsa.py."""

import numpy as np
import pytest

import reference as ref
from gradsel_cli.cli.commands import cli
from gradsel_cli.core import network
from gradsel_cli.kernels import draws
from gradsel_cli.numerics import loop
from gradsel_cli.sources import spsa
from helpers import as_blocks, config_settings, random_params

TWIN_RTOL = 1e-8  # each slope: a difference of two losses summed in another order, over 2 eps


def test_the_distributions_are_the_kernels_codes_in_order():
    assert [spsa.ZO_DISTS.index(n) for n in ("gaussian", "rademacher", "sphere")] == [
        draws.GAUSSIAN,
        draws.RADEMACHER,
        draws.SPHERE,
    ]


@pytest.mark.parametrize("dist", spsa.ZO_DISTS)
@pytest.mark.parametrize("scheme", spsa.ZO_SCHEMES)
def test_every_distribution_and_scheme_is_the_twins(dist, scheme):
    gen = np.random.default_rng(5)
    x = np.where(gen.random((4, 12)) < 0.4, gen.random((4, 12)), 0.0)
    y = np.array([0, 3, 1, 3])
    params = random_params(4, n_in=12, n_out=5, seed=2)
    s = config_settings(method="spsa", zo_dist=dist, zo_scheme=scheme, zo_eps=1e-2, directions=3)
    drawn = loop.words_of(s, "spsa", 7, 1)[0]
    got, value = spsa.gradient(params, x, y, s, None, drawn)
    want = ref.spsa_gradient(as_blocks(params), x, y, drawn, 1e-2, dist, central=scheme == "central")
    flat = np.concatenate([w.ravel() for w in want])
    np.testing.assert_allclose(got.flat, flat, rtol=TWIN_RTOL, atol=1e-12 * np.abs(flat).max())
    assert value == network.loss(params, x, y, s)


@pytest.mark.parametrize("args, said", [(["--zo-eps", "0"], "--zo-eps"), (["--zo-dist", "uniform"], "--zo-dist")])
def test_a_bad_option_is_one_line(runner, args, said):
    result = runner.invoke(cli, ["train", "--method", "spsa", *args])
    assert result.exit_code == 2 and not result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and said in lines[0], result.stderr
