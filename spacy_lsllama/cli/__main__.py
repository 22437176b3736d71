"""Run the app as ``python -m spacy_lsllama.cli``."""

from . import main

main()
