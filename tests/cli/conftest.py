"""Fixtures for the CLI tests: a tiny pipeline that loads in this process and in subprocesses."""

from pathlib import Path

import pytest
import spacy

PATTERNS = [
    {"label": "PERSON", "pattern": "Alice"},
    {"label": "PERSON", "pattern": [{"LOWER": "zoë"}, {"LOWER": "smith"}]},
    {"label": "ORG", "pattern": [{"LOWER": "acme"}, {"LOWER": "labs"}]},
]
TEXTCAT_BOW = {
    "@architectures": "spacy.TextCatBOW.v3",
    "exclusive_classes": True,
    "ngram_size": 1,
    "no_output_layer": False,
}


def make_tiny_pipeline(path: Path) -> Path:
    """Save a pipeline that sets ``doc.ents`` (PERSON, ORG) and ``doc.cats`` (POS, NEG) to ``path``.

    It uses built-in components only (an entity ruler and an untrained bag-of-words textcat),
    so subprocesses can load it too. Swap in a tiny LS-LLaMA pipeline once one exists.
    """
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat", config={"model": TEXTCAT_BOW})
    for label in ("POS", "NEG"):
        textcat.add_label(label)
    nlp.initialize()
    # Added after initialize(), which would reset the ruler's patterns.
    nlp.add_pipe("entity_ruler", before="textcat").add_patterns(PATTERNS)
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_pipeline(tmp_path_factory.mktemp("pipeline") / "tiny")
