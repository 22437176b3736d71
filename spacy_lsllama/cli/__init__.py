"""The ``lsllama`` command line. This module imports only the standard library, so a Ctrl-C
while the app and its dependencies are still importing is caught like any other."""

import sys


def main() -> None:
    """Entry point of the ``lsllama`` script; Ctrl-C before a command starts exits 130."""
    try:
        from .app import app

        app(prog_name="lsllama")
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        raise SystemExit(130) from None
