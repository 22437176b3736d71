"""The `lsllama` entry point: Ctrl-C at any moment of start-up is one line and exit 130."""

import subprocess
import sys
import types

import pytest

from spacy_lsllama.cli import main


def test_the_entry_module_imports_only_the_standard_library():
    """Everything heavy (Typer, rich, spaCy, torch) loads inside main's Ctrl-C handler."""
    code = (
        "import sys; before = set(sys.modules); import spacy_lsllama.cli; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(loaded) == ["spacy_lsllama", "spacy_lsllama.cli"]


class _ImportingApp(types.ModuleType):
    """A stand-in for the app module that is still importing when Ctrl-C comes."""

    def __getattr__(self, name: str) -> object:
        raise KeyboardInterrupt


def test_ctrl_c_while_the_app_imports_exits_130(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "spacy_lsllama.cli.app", _ImportingApp("app"))
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "Interrupted.\n"
