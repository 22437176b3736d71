"""Ctrl-C during start-up: one line and exit 130 at once, wherever the signal lands."""

import signal
import subprocess
import sys

from spacy_lsllama.cli.interrupt import EXIT_INTERRUPTED, START_UP_MESSAGE
from spacy_lsllama.testing import default_sigint

START_UP = """
import os, signal, time
from spacy_lsllama.cli.interrupt import exit_during_start_up, start_up_done
exit_during_start_up()
"""
# Ctrl-C inside source compiled at run time, as dataclasses and typing run while importing:
# without the handler, Python catches the KeyboardInterrupt here and then ends by SIGINT.
CTRL_C_INSIDE_EXEC = """
try:
    exec("os.kill(os.getpid(), signal.SIGINT); time.sleep(30)")
except KeyboardInterrupt:
    print("caught")
"""


def _run(code: str, preexec_fn=default_sigint) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", START_UP + code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=preexec_fn,
    )


def test_ctrl_c_during_start_up_exits_130_with_one_line():
    result = _run(CTRL_C_INSIDE_EXEC)
    assert result.returncode == EXIT_INTERRUPTED
    assert result.stderr == START_UP_MESSAGE + "\n"
    assert result.stdout == ""  # nothing after the signal ran


def test_after_start_up_ctrl_c_is_a_keyboard_interrupt_again():
    code = """
start_up_done()
try:
    os.kill(os.getpid(), signal.SIGINT)
except KeyboardInterrupt:
    print("caught")
"""
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "caught\n"


def test_an_ignored_ctrl_c_stays_ignored():
    """A shell starts background jobs with SIGINT ignored; start-up must not undo that."""
    code = "os.kill(os.getpid(), signal.SIGINT)\nprint('still running')\n"
    result = _run(code, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "still running\n"
