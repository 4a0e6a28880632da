"""runs/trial.py: one trial's record, and the error of a grid that stopped early."""

from gradsel_cli.config import TrainConfig
from gradsel_cli.numerics.training import train
from gradsel_cli.runs.records import run_record
from gradsel_cli.runs.trial import GridError, run_trial

TIMED = ("wall_time", "time_per_iter", "compile_time")


def test_a_trial_is_the_record_of_its_training_run(mnist_raw):
    config = TrainConfig(hidden=5, batch=4, iters=20, test_limit=200, method="select")
    record = run_trial(config, raw=mnist_raw)
    direct = run_record(train(config, mnist_raw))
    assert {k: v for k, v in record.items() if k not in TIMED} == {k: v for k, v in direct.items() if k not in TIMED}


def test_a_trial_with_evaluation_points_records_a_curve(mnist_raw):
    record = run_trial(TrainConfig(hidden=5, batch=4, iters=20, test_limit=200), raw=mnist_raw, eval_points=4)
    iterations = [t for t, _ in record["acc_curve"]]
    assert len(iterations) >= 2 and iterations == sorted(iterations) and iterations[-1] == 20


def test_a_grid_error_resumes_unless_said_otherwise():
    assert GridError("a worker died").resume
    stopped = GridError("no scheduler at tcp://h:1", resume=False)
    assert not stopped.resume and str(stopped) == "no scheduler at tcp://h:1"
    assert isinstance(stopped, RuntimeError)
