"""Run the gradsel command at a real pseudo-terminal, as a person would, and read what the screen shows.

CliRunner has no terminal, so progress bars and Ctrl-C are only exercised here:
the command runs in a child process whose stdin, stdout and stderr are the
slave side of a pty; this process reads the master side. Ctrl-C is the byte
0x03 written to the terminal, which the line discipline turns into SIGINT for
the foreground process group, exactly as when a person presses the keys.
"""

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from dataclasses import dataclass


@dataclass
class Screen:
    output: str  # everything the terminal received, escape sequences included
    exit_code: int  # the command's exit code (128 + N if killed by signal N)

    @property
    def text(self) -> str:
        """The output without ANSI escape sequences, carriage returns turned into newlines."""
        import re

        plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][AB0-9]", "", self.output)
        return plain.replace("\r\n", "\n").replace("\r", "\n")


def run_at_terminal(
    args: list[str],
    *,
    columns: int = 80,
    rows: int = 24,
    timeout: float = 120.0,
    interrupt_when: str | None = None,
    env: dict | None = None,
    cwd: str | None = None,
) -> Screen:
    """Run ``python -m gradsel_cli ARGS`` at a pty of the given size.

    interrupt_when: press Ctrl-C once this text has appeared on the screen.
    """
    child_env = {**os.environ, "COLUMNS": str(columns), "LINES": str(rows), "TERM": "xterm-256color", **(env or {})}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command at the terminal
        if cwd:
            os.chdir(cwd)
        os.execvpe(sys.executable, [sys.executable, "-m", "gradsel_cli", *args], child_env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    chunks, pressed = [], False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        if (
            interrupt_when
            and not pressed
            and interrupt_when in Screen(b"".join(chunks).decode(errors="replace"), 0).text
        ):
            os.write(fd, b"\x03")
            pressed = True
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    code = os.waitstatus_to_exitcode(status)
    return Screen(b"".join(chunks).decode(errors="replace"), code if code >= 0 else 128 - code)
