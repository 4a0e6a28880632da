"""papers.py: published numbers from the package's copy, the tables' layouts, the AVG check, the claims."""

import numpy as np
import pytest

from gradsel_cli import papers
from gradsel_cli.papers import AVG, CLAIMS, LAYOUTS, avg_check, claims, layout, published


@pytest.mark.parametrize(
    "preset, batch, hidden, method, shots, accuracy",
    [
        ("alternate", 1, 20, "analytic", 1, 0.5094),
        ("alternate", 1, 50, "alternate", 3, 0.5930),
        ("alternate", 8, 50, "alternate", 2, 0.5615),
        ("select", 1, 20, "numeric", 3, 0.5247),
        ("select", 2, 20, "analytic", 2, 0.5505),
        ("select", 4, 20, "select", 3, 0.6140),
        ("select", 1, 20, "select", AVG, 0.5382),
        ("select", 4, 20, "numeric", "avg", 0.5659),
    ],
)
def test_known_cells(preset, batch, hidden, method, shots, accuracy):
    assert published(preset, batch, hidden, method, shots) == accuracy


def test_cells_the_paper_does_not_print():
    assert published("alternate", 1, 20, "numeric", 1) is None
    assert published("alternate", 1, 20, "analytic", AVG) is None
    assert published("select", 8, 20, "select", 1) is None
    assert published("select", 1, 50, "select", 1) is None


def test_numpy_and_string_arguments():
    assert published("alternate", np.int64(1), np.int64(20), "analytic", np.int64(1)) == 0.5094
    assert published("alternate", 1, 20, "analytic", "1") == 0.5094


def test_parsed_once():
    assert papers._table() is papers._table()
    assert len(papers._table()) == 64 + 27 + 9


@pytest.mark.parametrize("preset, groups, rows, columns", [("alternate", 4, 4, 4), ("select", 3, 3, 3)])
def test_layout_shape(preset, groups, rows, columns):
    lay = layout(preset)
    assert lay.preset == preset and lay.baseline == "analytic"
    assert (len(lay.batches), len(lay.rows), len(lay.shots)) == (groups, rows, columns)
    cells = lay.cells()
    assert len(cells) == groups * rows * columns
    assert len({tuple(sorted(c.items())) for c in cells}) == len(cells)
    # every cell of the layout is printed, and nothing else is (AVGs aside)
    assert all(published(preset, **c) is not None for c in cells)
    printed = [k for k in papers._table() if k[0] == preset and k[4] != AVG]
    assert len(printed) == len(cells)


def test_alternate_layout_is_the_papers():
    lay = LAYOUTS["alternate"]
    assert lay.batches == (1, 2, 4, 8) and lay.shots == (1, 2, 3, 4) and not lay.has_avg
    assert lay.rows == (("analytic", 20), ("alternate", 20), ("analytic", 50), ("alternate", 50))
    assert lay.cells()[:2] == [
        dict(method="analytic", shots=1, batch=1, hidden=20),
        dict(method="analytic", shots=2, batch=1, hidden=20),
    ]
    assert lay.cells()[-1] == dict(method="alternate", shots=4, batch=8, hidden=50)
    assert lay.title.startswith("Deploying Analytic and Numerical Gradients")


def test_select_layout_is_the_papers():
    lay = LAYOUTS["select"]
    assert lay.batches == (1, 2, 4) and lay.shots == (1, 2, 3) and lay.has_avg
    assert lay.rows == (("numeric", 20), ("analytic", 20), ("select", 20))
    avgs = [published("select", b, h, m, AVG) for b in lay.batches for m, h in lay.rows]
    assert len(avgs) == 9 and None not in avgs


def test_avg_check_finds_the_misprint():
    assert avg_check("select") == [dict(batch=1, hidden=20, method="select", printed=0.5382, mean_of_cells=0.5378)]
    assert avg_check("alternate") == []  # no AVG column


@pytest.mark.parametrize("call", [layout, avg_check, claims, lambda p: published(p, 1, 20, "analytic", 1)])
def test_unknown_preset(call):
    with pytest.raises(ValueError, match=r"unknown preset 'paperC'.*alternate, select"):
        call("paperC")


def test_claims_of_paper_a():
    cs = claims("alternate")
    assert len(cs) == 4 * 2 + 1 and len({c.id for c in cs}) == len(cs)
    assert all(c.method == "alternate" and c.baselines == ("analytic",) and c.direction == "greater" for c in cs)
    assert all(len(c.cells) == 1 and c.cells[0]["shots"] == 2 for c in cs[:-1])
    pooled = cs[-1]
    assert pooled.id == "alternate-k2-pooled"
    assert {(c["batch"], c["hidden"]) for c in pooled.cells} == {(b, h) for b in (1, 2, 4, 8) for h in (20, 50)}
    assert {c["shots"] for c in pooled.cells} == {2}


def test_claim_of_paper_b():
    (c,) = claims("select")
    assert c.method == "select" and set(c.baselines) == {"numeric", "analytic"}
    assert c.cells == tuple(dict(batch=1, hidden=20, shots=k) for k in (1, 2, 3))
    assert "B = 1" in c.text


def test_claims_use_cells_of_their_table():
    for preset, cs in CLAIMS.items():
        needed = [tuple(sorted(c.items())) for c in layout(preset).cells()]
        for claim in cs:
            assert claim.preset == preset
            for cell in claim.cells:
                for method in (claim.method, *claim.baselines):
                    assert tuple(sorted(dict(cell, method=method).items())) in needed


def test_each_claims_margin_lies_below_the_gain_it_claims():
    """An equivalence margin wider than the claimed gain cannot refute it: each claim's is half the paper's own
    gain, capped at the default, and half a test image where the paper's numbers show no gain."""
    from gradsel_cli.config import MARGIN

    for preset in ("alternate", "select"):
        for claim in papers.claims(preset):
            for base in claim.baselines:
                gain, margin = papers.claimed_gain(claim, base), papers.claim_margin(claim, base, MARGIN)
                assert papers.SMALLEST_MARGIN <= margin <= MARGIN
                assert margin < gain or (gain <= papers.SMALLEST_MARGIN and margin == papers.SMALLEST_MARGIN)
    h50b8 = next(c for c in papers.claims("alternate") if c.id == "alternate-k2-H50-B8")
    assert papers.claimed_gain(h50b8, "analytic") == pytest.approx(
        0.0007
    )  # the published alternate minus analytic of that cell
    assert papers.claim_margin(h50b8, "analytic", MARGIN) == pytest.approx(0.00035)


def test_the_paper_table_uses_each_claims_margin_unless_one_is_given(runner):
    import json

    from gradsel_cli.cli.commands import cli

    own = json.loads(runner.invoke(cli, ["table", "--format", "json"]).stdout)
    margins = {p["equivalence"]["margin"] for v in own["verdicts"] for p in v["comparisons"] if "equivalence" in p}
    assert max(margins) < 0.002 and len(margins) > 1
    given = json.loads(runner.invoke(cli, ["table", "--format", "json", "--margin", "0.002"]).stdout)
    assert {p["equivalence"]["margin"] for v in given["verdicts"] for p in v["comparisons"]} == {0.002}
