"""`lsllama tune-ner`: one pass of the encoder, every penalty scored as `evaluate` scores it."""

import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_lsllama.cli.app import app
from spacy_lsllama.testing import lsllama_ner_pipeline

runner = CliRunner()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gold sentences like the pipeline's training data, some with names it never saw."""
    nlp = spacy.blank("en")
    docs = []
    for person, place in [("Obama", "Paris"), ("Merkel", "Tokyo"), ("Ann", "Lyon"),
                          ("Kofi", "Oslo"), ("Macron", "Quito")]:  # fmt: skip
        doc = nlp.make_doc(f"{person} visited {place} today")
        start = len(person) + 9
        doc.ents = [doc.char_span(0, len(person), "PER"),
                    doc.char_span(start, start + len(place), "LOC")]  # fmt: skip
        docs.append(doc)
    path = tmp_path_factory.mktemp("dev") / "dev.spacy"
    DocBin(docs=docs).to_disk(path)
    return path


def _invoke(*args: str):
    return runner.invoke(app, [*args, "--no-progress"])


def test_scores_each_penalty_as_evaluate_does(lsllama_pipeline, dev, tmp_path):
    out = tmp_path / "tune.json"
    result = _invoke("tune-ner", str(lsllama_pipeline), str(dev), "--penalties", "-50,0,50",
                     "--output", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    tuned = json.loads(out.read_text())
    rows = {row["outside_penalty"]: row for row in tuned["scores"]}
    assert list(rows) == [-50.0, 0.0, 50.0] and tuned["component"] == "ner"
    assert tuned["best"]["ents_f"] == max(row["ents_f"] for row in tuned["scores"])
    assert rows[-50.0]["ents_r"] == 0.0  # O always wins: no entities
    # O never wins: more entities found, more of them wrong
    assert rows[50.0]["ents_r"] > rows[0.0]["ents_r"] > 0.0
    assert rows[50.0]["ents_p"] < rows[0.0]["ents_p"]
    result = _invoke("evaluate", str(lsllama_pipeline), str(dev), "--output", str(tmp_path / "e"))
    assert result.exit_code == 0, result.output
    assert rows[0.0]["ents_f"] == json.loads((tmp_path / "e").read_text())["ents_f"]


def test_the_best_penalty_is_named_with_how_to_use_it(lsllama_pipeline, dev, tmp_path):
    out = tmp_path / "tune.json"
    result = _invoke("tune-ner", str(lsllama_pipeline), str(dev), "--penalties", "-50,0",
                     "--output", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--components.ner.outside_penalty 0" in result.output
    # equal F1 (a penalty too small to change a tag): the one closest to the model as trained
    result = _invoke("tune-ner", str(lsllama_pipeline), str(dev), "--penalties", "-1e-9,0,1e-9",
                     "--output", str(out))  # fmt: skip
    assert json.loads(out.read_text())["best"]["outside_penalty"] == 0.0


@pytest.mark.parametrize("penalties", ["", "0,high", "0,nan", "inf"])
def test_bad_penalties_are_a_usage_error(lsllama_pipeline, dev, penalties):
    result = _invoke("tune-ner", str(lsllama_pipeline), str(dev), "--penalties", penalties)
    assert result.exit_code == 2
    assert "--penalties" in result.output and "Traceback" not in result.output


def test_a_pipeline_without_the_component_or_data_is_a_clear_error(
    tiny_pipeline, lsllama_pipeline, dev, tmp_path
):
    result = _invoke("tune-ner", str(tiny_pipeline), str(dev))
    assert result.exit_code == 1 and "lsllama_ner" in result.output
    result = _invoke("tune-ner", str(lsllama_pipeline), str(dev), "--component", "textcat")
    assert result.exit_code == 1 and "--component textcat" in result.output
    missing = tmp_path / "missing.spacy"
    result = _invoke("tune-ner", str(lsllama_pipeline), str(missing))
    assert result.exit_code == 1 and "missing.spacy" in result.output


def test_a_component_writing_spans_is_scored_under_its_spans_key(tiny_model_dir, dev, tmp_path):
    pipeline = lsllama_ner_pipeline(tmp_path / "spans", tiny_model_dir, spans_key="ner", steps=10)
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(dev).get_docs(nlp.vocab))
    for doc in docs:
        doc.spans["ner"] = list(doc.ents)
        doc.ents = []
    DocBin(docs=docs).to_disk(tmp_path / "dev.spacy")
    out = tmp_path / "tune.json"
    result = _invoke("tune-ner", str(pipeline), str(tmp_path / "dev.spacy"), "--penalties",
                     "-50,0,50", "--output", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {row["outside_penalty"]: row for row in json.loads(out.read_text())["scores"]}
    assert set(rows[0.0]) == {"outside_penalty", "spans_ner_p", "spans_ner_r", "spans_ner_f"}
    assert rows[-50.0]["spans_ner_r"] == 0.0 and rows[50.0]["spans_ner_r"] > 0.0
