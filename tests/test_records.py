"""The run record (runs/records.py): format 2 over the run's own sources, and format-1 records (two sources wired
in) read through upgrade(), mixed with new ones in one file and still counting as done."""

import json

import pytest

from gradsel_cli.config import TrainConfig
from gradsel_cli.runs import records, results, trial

SHIPPED = results.shipped_path("select")


@pytest.fixture(scope="module")
def shipped():
    """The raw lines of the shipped paper-B runs (format 1), by method."""
    import gzip

    raw = SHIPPED.read_bytes()
    text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
    out: dict = {}
    for line in text.splitlines():
        rec = json.loads(line)
        out.setdefault(rec["config"]["method"], rec)
    return out


def test_a_format_1_record_reads_as_the_current_format(shipped):
    for method, rec in shipped.items():
        assert rec["format"] == 1 and records.check_record(rec) is None
        new = records.upgrade(rec)
        assert new["format"] == records.FORMAT and records.check_record(new) is None
        names = list(TrainConfig.from_dict(rec["config"]).run_sources())
        assert new["sources"] == names and set(new["counts"]) == set(names)
        assert new["predictions"] == rec["predictions"] and new["accuracy"] == rec["accuracy"]
        if method == "select":
            assert new["shares"]["numeric"] == rec["numeric_share"]
            assert new["select_wins"] == {k: rec["select_wins"][k] for k in names}
            assert new["rel_diff_mean"] == {"numeric": rec["rel_diff_mean"]}
            assert sum(new["shares"].values()) == pytest.approx(1.0, abs=1e-15)
        else:
            assert new["shares"] == {method: 1.0} and new["select_wins"] is None
        assert records.run_key(new) == records.run_key(rec)  # a stored run still counts as done


def test_old_and_new_records_mix_in_one_file_and_a_rerun_is_a_duplicate(shipped, tmp_path, mnist_raw):
    old = shipped["numeric"]
    config = TrainConfig.from_dict(old["config"]).replace(iters=5, test_limit=100)
    new = trial.run_trial(config, raw=mnist_raw)
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n")
    loaded = results.load(path)
    assert [r["format"] for r in loaded] == [records.FORMAT, records.FORMAT]
    assert loaded[1]["sources"] == ["numeric"] and loaded[1]["counts"] == {"numeric": 5}
    assert records.run_key(loaded[0]) == records.run_key(old)


def test_a_record_over_other_sources_than_its_run_is_refused(shipped):
    new = records.upgrade(shipped["select"])
    assert records.check_record({**new, "sources": ["numeric", "analytic"]}) is not None
    assert "did not compute" in records.check_record({**new, "counts": {**new["counts"], "complex-step": 1}})
    assert "formats 1 to" in records.check_record({**new, "format": records.FORMAT + 1})


def _fresh(config: TrainConfig, mnist_raw) -> dict:
    return trial.run_trial(config.replace(iters=20, hidden=3, test_limit=50), raw=mnist_raw)


@pytest.mark.parametrize(
    "method, edit, said",
    [
        ("alternate", lambda r: r["counts"].update(analytic=999_999), "add up to"),
        ("alternate", lambda r: r.update(counts={}, shares={}), "each of the run's sources"),
        ("alternate", lambda r: r["shares"].update(analytic=0.7, numeric=1.0), "add up to 1.7"),
        ("select", lambda r: r["select_wins"].update(analytic=30), "'select_wins'"),
        ("select", lambda r: r["counts"].update(numeric=3), "select computes every source"),
        ("analytic", lambda r: r.update(select_wins={"analytic": 20}), "'select_wins'"),
        ("analytic", lambda r: r.update(format=True), "record format True"),
    ],
)
def test_a_record_that_contradicts_itself_is_refused_with_why(method, edit, said, mnist_raw, tmp_path):
    config = TrainConfig(method=method)
    rec = _fresh(config, mnist_raw)
    assert records.check_record(rec) is None  # as written, every record agrees with itself
    bad = json.loads(json.dumps(rec))
    edit(bad)
    assert said in records.check_record(bad)
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(bad) + "\n" + json.dumps(_fresh(config.replace(seed=1), mnist_raw)) + "\n")
    with pytest.warns(UserWarning, match=rf"runs.jsonl:1: .*{said[:12]}"):
        loaded = results.load(path)
    assert [r["config"]["seed"] for r in loaded] == [1]  # left out of every statistic, the rest read


def test_every_shipped_record_agrees_with_itself():
    paths = sorted(results.CHECKOUT.glob("*.jsonl"))
    assert len(paths) >= 5
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            assert records.check_record(json.loads(line)) is None, f"{path.name}:{number}"


@pytest.mark.parametrize(
    "config",
    [{"method": "complex-step"}, {"method": "select", "sources": "analytic,numeric,complex-step"}],
)
def test_a_format_1_record_naming_what_format_1_never_had_is_refused(shipped, config):
    rec = json.loads(json.dumps(shipped["select"]))
    rec["config"].update(config)
    rec["config_hash"] = records.config_hash(rec["config"])
    assert "format 1 knew only the sources analytic and numeric" in records.check_record(rec)


def test_a_format_1_select_record_with_its_sources_reversed_upgrades_by_name(shipped):
    rec = json.loads(json.dumps(shipped["select"]))
    rec["config"]["sources"] = "numeric,analytic"
    rec["config_hash"] = records.config_hash(rec["config"])
    assert records.check_record(rec) is None
    new = records.upgrade(rec)
    assert new["sources"] == ["numeric", "analytic"]
    assert new["shares"]["numeric"] == rec["numeric_share"]  # numeric's share stays numeric's
    assert new["shares"]["analytic"] == pytest.approx(1 - rec["numeric_share"], abs=1e-12)
    assert new["rel_diff_mean"] is None  # numeric's difference to analytic is not analytic's to numeric
    assert records.check_record(new) is None


def test_select_records_its_ties_and_a_record_whose_ties_are_not_among_its_wins_is_refused(mnist_raw):
    from gradsel_cli.numerics.training import train

    config = TrainConfig(method="select", sources="analytic,complex-step", shots=2, batch=4, hidden=5, iters=20)
    rec = json.loads(json.dumps(records.run_record(train(config, mnist_raw))))
    assert records.check_record(rec) is None
    ties, wins = rec["select_ties"], rec["select_wins"]
    assert set(ties) == set(wins) and all(0 <= ties[n] <= wins[n] for n in ties) and sum(ties.values()) > 0
    too_many = {**ties, "complex-step": wins["complex-step"] + 1}
    assert "ties are some of its wins" in records.check_record({**rec, "select_ties": too_many})
    assert records.check_record({k: v for k, v in rec.items() if k != "select_ties"}) is None  # older records
    plain = json.loads(json.dumps(records.run_record(train(config.replace(method="analytic"), mnist_raw))))
    assert plain["select_ties"] is None and records.check_record({**plain, "select_ties": ties}) is not None
