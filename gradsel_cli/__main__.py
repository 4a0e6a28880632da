"""The ``gradsel`` command and ``python -m gradsel_cli``: signals are handled from the first moment on.

Until the Click group installs its own handling, SIGTERM or Ctrl-C ends the
start-up with the same one line and exit code 130 as later (nothing has been
done yet), not silently (SIGTERM's default) nor with a traceback.
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


_stopped.at_start = True  # the Click group does not put it back when it ends


def main():
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped)
    from .cli import cli  # click, the options: after the handlers

    return cli()


if __name__ == "__main__":
    main()
