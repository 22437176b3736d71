"""Ctrl-C while a command starts up: one line and exit 130, at once.

Until a command has loaded what it needs (Typer's options, spaCy, torch, the pipeline) it has
written nothing, so there is nothing to flush or clean up. A KeyboardInterrupt raised in that
time is not reliable: libraries that are importing turn it into an ImportError (a traceback)
or swallow it (the run goes on), and one raised inside source that Python compiles at run
time (`dataclasses`, `typing` and numpy do so while importing) makes Python end by SIGINT
however the exception was handled. So during start-up the signal handler itself exits.
Standard library only: the entry point installs it before importing anything heavy.
"""

import os
import signal
from types import FrameType

EXIT_INTERRUPTED = 130
START_UP_MESSAGE = "Interrupted during start-up; nothing was written."


def exit_during_start_up() -> None:
    """Until `start_up_done`, Ctrl-C prints `START_UP_MESSAGE` and exits 130 at once.

    A SIGINT that is ignored (a shell's background job) or handled by someone else stays so.
    """
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _exit_now)


def start_up_done() -> None:
    """Ctrl-C raises KeyboardInterrupt again, so the command can stop cleanly."""
    if signal.getsignal(signal.SIGINT) is _exit_now:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    # os.write: the handler may run in the middle of a write to sys.stderr
    try:
        os.write(2, f"{START_UP_MESSAGE}\n".encode())
    except OSError:  # stderr closed
        pass
    os._exit(EXIT_INTERRUPTED)
