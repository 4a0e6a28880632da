"""The ``gradsel`` command and ``python -m gradsel_cli``: signals are handled from the first moment on.

Until the Click group installs its own handling, SIGTERM or Ctrl-C ends the
start-up with the same one line and exit code 130 as later (nothing has been
done yet), not silently (SIGTERM's default) nor with a traceback; once the
command has ended, they are ignored for the moment the interpreter takes to exit.
"""

import os
import signal
import sys


def _stopped(signum, frame):
    try:
        sys.stderr.write("\nInterrupted.\n")
        sys.stderr.flush()
    finally:
        os._exit(130)


_stopped.at_start = True  # type: ignore[attr-defined]  # a mark: the Click group does not put it back when it ends


def _one_blas_thread() -> None:
    """BLAS on one thread unless the environment says otherwise, set before NumPy loads it. gradsel computes in
    its Numba kernels and makes only small BLAS calls (its benchmarks' NumPy references run on one BLAS thread
    anyway), while OpenBLAS's idle threads spin: about 0.2 s of CPU in every run on 2 cores."""
    if not any(os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def main():
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped)
    _one_blas_thread()
    from .cli.commands import cli  # click, the options: after the handlers

    try:
        return cli()
    except KeyboardInterrupt:  # a signal just as the command ended, before the lines below
        _stopped(None, None)
    finally:
        # The command has ended and said so: a signal now (the interpreter's own exit, a fraction of a second)
        # would only turn its exit code into a silent -15.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    main()
