"""One trial: train a TrainConfig and give its record; the error of a grid that stopped early.

Both executors (local.py, dask_executor.py) run trials through run_trial and
raise GridError; experiments.py drives them.
"""

from ..config import TrainConfig
from .records import run_record


class GridError(RuntimeError):
    """A grid stopped before its end (a worker or the scheduler died, no worker came); finished trials are kept.

    resume: the same command goes on where this one stopped (run_grid adds what was stored); False for
    a message that is complete as it is (nothing ran: a scheduler that is not there).
    """

    def __init__(self, message: str, resume: bool = True):
        super().__init__(message)
        self.resume = resume


def run_trial(config: TrainConfig, raw=None, data_dir=None, eval_points: int = 0) -> dict:
    """Train one trial and return its record (with a test-accuracy curve of `eval_points` points)."""
    from ..data import load_mnist_raw
    from ..numerics.training import train

    return run_record(train(config, load_mnist_raw(data_dir) if raw is None else raw, eval_points=eval_points))
