"""Which pipeline `lsllama tag` and `lsllama evaluate` run when none is named."""

import importlib.util
import json

import pytest
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_lsllama.cli import defaults
from spacy_lsllama.cli.app import app
from spacy_lsllama.corpora.conll import DOCUMENT_KEY

RECORD = b'{"text": "Alice joined Acme Labs."}\n'


def invoke(*args, env: dict | None = None, input: bytes | None = None):
    env = {"TTY_COMPATIBLE": "0", "LSLLAMA_MODEL": "", **(env or {})}
    return CliRunner().invoke(app, [*map(str, args)], input=input, env=env)


@pytest.fixture
def shipped_missing(monkeypatch):
    """As on a machine where en_lsllama_ner is not installed."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == defaults.DEFAULT_PIPELINE else find_spec(name, *a),
    )


def test_tag_without_a_model_and_without_the_shipped_pipeline_says_how_to_get_one(
    shipped_missing,
):
    result = invoke("tag", "-", input=RECORD)
    assert result.exit_code == 1
    assert "en_lsllama_ner is not installed" in result.stderr
    assert "scripts/install.sh" in result.stderr and "--model" in result.stderr


def test_tag_takes_the_model_from_lsllama_model(tiny_pipeline):
    result = invoke("tag", "-", env={"LSLLAMA_MODEL": str(tiny_pipeline)}, input=RECORD)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["ents"]
    assert result.stdout == invoke("tag", "-", "--model", tiny_pipeline, input=RECORD).stdout
    assert "shipped pipeline" not in result.stderr


def test_evaluate_with_one_argument_scores_that_data_with_the_default_pipeline(
    tiny_pipeline, tmp_path
):
    import spacy

    nlp = spacy.load(tiny_pipeline)
    gold = nlp("Alice joined Acme Labs.")
    DocBin(docs=[gold]).to_disk(tmp_path / "gold.spacy")
    out = tmp_path / "scores.json"
    env = {"LSLLAMA_MODEL": str(tiny_pipeline)}
    result = invoke("evaluate", tmp_path / "gold.spacy", "--output", out, "--no-progress", env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text())["ents_f"] == 1.0


def test_evaluate_with_one_argument_and_no_pipeline_says_how_to_get_one(shipped_missing, tmp_path):
    result = invoke("evaluate", tmp_path / "gold.spacy")
    assert result.exit_code == 1
    assert "en_lsllama_ner is not installed" in result.stderr


def test_evaluate_documents_joins_each_documents_sentences(tiny_pipeline, tmp_path):
    import spacy

    nlp = spacy.load(tiny_pipeline)
    docs = [nlp(text) for text in ("Alice joined Acme Labs.", "Bob left.", "Acme Labs grew.")]
    for doc, number in zip(docs, (0, 0, 1)):
        doc.user_data[DOCUMENT_KEY] = number
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "gold.spacy")
    scores = {}
    for flag in ("--no-documents", "--documents"):
        out = tmp_path / f"{flag}.json"
        result = invoke(
            "evaluate", tiny_pipeline, tmp_path / "gold.spacy", "--output", out, "--no-progress",
            flag,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        scores[flag] = json.loads(out.read_text())
    assert scores["--no-documents"]["docs"] == 3 and scores["--documents"]["docs"] == 2
    assert scores["--documents"]["ents_f"] == scores["--no-documents"]["ents_f"] == 1.0
