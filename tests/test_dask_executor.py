"""The Dask executor (runs/dask_executor.py): its worker configuration and the environment of its workers."""

import pytest


def test_the_dask_worker_configuration_the_readme_names_ships_in_the_package():
    from gradsel_cli.runs import dask_executor

    text = dask_executor.WORKER_CONFIG.read_text()
    assert "MALLOC_TRIM_THRESHOLD_: null" in text and "pre-spawn-environ" in text


def test_local_dask_workers_keep_glibcs_default_memory_trimming():
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which makes a training run
    1.6-2x slower (memory returned to the system on nearly every free); ours are started without it."""
    pytest.importorskip("distributed")
    import contextlib
    import os

    from gradsel_cli.runs.dask_executor import DaskExecutor

    with contextlib.ExitStack() as closing:
        client = DaskExecutor(1)._connect(1, closing)
        seen = client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("NUMBA_NUM_THREADS")))
    assert list(seen.values()) == [(None, "1")]
