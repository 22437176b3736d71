"""The ``lsllama`` command line. This module imports only the standard library, so Ctrl-C
exits cleanly from the first moment of start-up (`interrupt`)."""

from .interrupt import exit_during_start_up


def main() -> None:
    """Entry point of the ``lsllama`` script."""
    exit_during_start_up()
    from .app import app  # after the handler: importing the app takes a while

    app(prog_name="lsllama")
