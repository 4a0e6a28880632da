"""One trial: train a TrainConfig and give its record; the error of a grid that stopped early.

Both executors (local.py, dask_executor.py) run trials through run_trial and
raise GridError; experiments.py drives them. compile_for readies the kernels
of a grid's trials in one process before workers start.
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


def run_trial(config: TrainConfig, raw=None, data_dir=None, eval_points: int = 0, probe_every: int = 0) -> dict:
    """Train one trial and return its record (with a test-accuracy curve of `eval_points` points, and the
    fidelity probe every `probe_every` iterations)."""
    from ..data import load_mnist_raw
    from ..numerics.training import train

    data = load_mnist_raw(data_dir) if raw is None else raw
    return run_record(train(config, data, eval_points=eval_points, probe_every=probe_every))


def kernels_of(config: TrainConfig) -> tuple:
    """What picks the kernels a trial calls: its policy and sources, precision, the optimizer and the options
    that take another path (batch norm, dropout, weight decay), select's comparison. Sizes, seeds and the
    values of rates and steps do not: two trials alike here call the same kernels, compiled for the same types."""
    c = config
    return (
        c.method,
        c.run_sources(),
        c.precision,
        c.optimizer,
        c.batch_norm,
        c.dropout > 0,
        c.weight_decay > 0,
        c.select_on,
    )


def compile_for(configs: list[TrainConfig], raw) -> None:
    """Compile, or load from Numba's cache, the kernels of `configs` in this process: one iteration of one trial
    of each kind (kernels_of). A pool's workers then load them rather than all compile the same kernels at once,
    each in its own memory, and the compile happens where it is said (the command's on_compile)."""
    from ..numerics.training import train

    kinds: dict[tuple, TrainConfig] = {}
    for config in configs:
        kinds.setdefault(kernels_of(config), config)
    for config in kinds.values():
        train(config.replace(iters=1, test_limit=1), raw)
