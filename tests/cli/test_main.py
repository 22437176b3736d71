"""The `lsllama` entry point: it loads nothing heavy before its Ctrl-C handler is in place."""

import subprocess
import sys


def test_the_entry_module_imports_only_the_standard_library():
    """Everything heavy (Typer, rich, spaCy, torch) loads after the start-up Ctrl-C handler."""
    code = (
        "import sys; before = set(sys.modules); import spacy_lsllama.cli; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    ours = [name for name in loaded if name.split(".")[0] == "spacy_lsllama"]
    assert ours == ["spacy_lsllama", "spacy_lsllama.cli", "spacy_lsllama.cli.interrupt"]
    assert set(loaded) - set(ours) <= sys.stdlib_module_names
