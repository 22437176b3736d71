"""`lsllama evaluate` reports what `spacy train` and `spacy benchmark accuracy` report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.scorer import Scorer
from spacy.tokens import DocBin
from spacy.training import Corpus

PIPELINE = """
[nlp]
lang = "en"
pipeline = ["llm", "ner", "textcat"]

[components]

[components.llm]
factory = "lsllama_transformer"

[components.llm.model]
@architectures = "spacy-lsllama.LlamaTransformer.v1"
name = "{name}"

[components.llm.model.lora]
@misc = "spacy-lsllama.LoRA.v1"
r = 4

[components.ner]
factory = "lsllama_ner"

[components.textcat]
factory = "textcat_multilabel"
threshold = {threshold}

[components.textcat.model]
@architectures = "spacy-lsllama.LabelSupervisedClassifier.v1"
pooling = "max"
exclusive_classes = false

[components.textcat.model.tok2vec]
@architectures = "spacy-lsllama.PieceListener.v1"
upstream = "llm"
"""
THRESHOLD = 0.52
PEOPLE, PLACES = ["Obama", "Merkel", "Macron", "Ann"], ["Paris", "Berlin", "Tokyo", "Rome"]
KEYS = ("ents_p", "ents_r", "ents_f", "cats_score", "cats_micro_f", "cats_macro_f")


def _docs(nlp, n: int, offset: int) -> list:
    docs = []
    for i in range(offset, offset + n):
        person, place = PEOPLE[i % 4], PLACES[(i // 4) % 4]
        verb = "visited" if i % 3 else "left"
        doc = nlp.make_doc(f"{person} {verb} {place} today")
        doc.ents = [doc.char_span(0, len(person), "PER"), doc[2:3].char_span(0, len(place), "LOC")]
        doc.cats = {"TRAVEL": float(verb == "visited"), "LEAVE": float(verb == "left")}
        docs.append(doc)
    return docs


def _run(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _evaluate(model: Path, dev: Path, out: Path, *options: str) -> dict:
    """The scores of `lsllama evaluate`."""
    _run("spacy_lsllama.cli", "evaluate", str(model), str(dev), "--output", str(out / "e.json"),
         "--no-progress", *options)  # fmt: skip
    return json.loads((out / "e.json").read_text())


def _evaluate_both(model: Path, dev: Path, out: Path) -> tuple[dict, dict]:
    """The scores of `lsllama evaluate` and of `spacy benchmark accuracy`, both as loaded
    (`dtype = "auto"`: bfloat16 on a CPU with AMX, in both)."""
    _run("spacy", "benchmark", "accuracy", str(model), str(dev), "--output", str(out / "b.json"))
    return _evaluate(model, dev, out), json.loads((out / "b.json").read_text())


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory) -> Path:
    """A tiny NER + multi-label textcat pipeline trained by `spacy train` for a few steps."""
    root = tmp_path_factory.mktemp("trained")
    config = spacy.util.load_config_from_str(
        PIPELINE.format(name=tiny_model_dir, threshold=THRESHOLD)
    )
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=False)
    nlp.config.to_disk(root / "config.cfg")
    DocBin(docs=_docs(nlp, 24, 0)).to_disk(root / "train.spacy")
    DocBin(docs=_docs(nlp, 12, 5)).to_disk(root / "dev.spacy")
    _run("spacy", "train", str(root / "config.cfg"), "--output", str(root / "out"),
         "--paths.train", str(root / "train.spacy"), "--paths.dev", str(root / "dev.spacy"),
         "--training.max_steps", "12", "--training.eval_frequency", "6",
         "--training.optimizer.learn_rate", "0.003")  # fmt: skip
    return root


def test_train_benchmark_and_evaluate_report_the_same_scores(trained, tmp_path):
    model = trained / "out" / "model-best"
    performance = json.loads((model / "meta.json").read_text())["performance"]
    ours, benchmark = _evaluate_both(model, trained / "dev.spacy", tmp_path)
    for key in KEYS:
        assert ours[key] == pytest.approx(benchmark[key]), key
    per_type = ours["ents_per_type"]["PER"]
    assert per_type["f"] == pytest.approx(benchmark["ents_per_type"]["PER"]["f"])
    # spacy train scored dev in float32, whatever this host's CPU predicts in by default
    exact = _evaluate(model, trained / "dev.spacy", tmp_path, "--dtype", "float32")
    assert exact["encoder_dtypes"] == ["float32"]
    for key in KEYS:
        assert exact[key] == pytest.approx(performance[key]), key


def test_the_scores_name_the_dtype_the_encoder_ran_in(trained, tmp_path):
    scores = _evaluate(
        trained / "out" / "model-best", trained / "dev.spacy", tmp_path, "--dtype", "bfloat16"
    )
    assert scores["encoder_dtypes"] == ["bfloat16"]


def test_textcat_is_scored_at_the_component_threshold(trained, tmp_path):
    """At a threshold among the gold labels' scores, a fixed 0.5 would report otherwise.

    (spaCy's single-label scorer ignores the threshold; the multi-label one applies it.)
    """
    nlp = spacy.load(trained / "out" / "model-best")
    examples = list(Corpus(trained / "dev.spacy")(nlp))
    for eg in examples:
        eg.predicted = nlp(eg.predicted)
    gold = [(eg.predicted.cats[k], v) for eg in examples for k, v in eg.reference.cats.items()]
    positives = sorted({score for score, value in gold if value == 1.0})
    threshold = (positives[len(positives) // 2 - 1] + positives[len(positives) // 2]) / 2
    at_half = Scorer.score_cats(
        examples, "cats", labels=["LEAVE", "TRAVEL"], multi_label=True, threshold=0.5
    )
    nlp = spacy.load(
        trained / "out" / "model-best", config={"components.textcat.threshold": threshold}
    )
    nlp.get_pipe("textcat").cfg["threshold"] = threshold  # the saved cfg wins over the config
    nlp.to_disk(tmp_path / "thresholded")
    ours, benchmark = _evaluate_both(tmp_path / "thresholded", trained / "dev.spacy", tmp_path)
    assert ours["cats_micro_f"] == pytest.approx(benchmark["cats_micro_f"])
    assert ours["cats_micro_f"] != pytest.approx(at_half["cats_micro_f"])


def _evaluate_result(trained: Path, *options: str) -> subprocess.CompletedProcess:
    model, dev = trained / "out" / "model-best", trained / "dev.spacy"
    command = ["spacy_lsllama.cli", "evaluate", str(model), str(dev), "--no-progress", *options]
    return subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True)


def test_config_overrides_reach_the_pipeline_as_in_spacy_train(trained, tmp_path):
    greedy = _evaluate(trained / "out" / "model-best", trained / "dev.spacy", tmp_path,
                       "--components.ner.decoding", "greedy")  # fmt: skip
    assert 0.0 <= greedy["ents_f"] <= 1.0
    wrong = _evaluate_result(trained, "--components.ner.decoding", "beam")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert "decoding must be one of ('viterbi', 'greedy'), not 'beam'" in wrong.stderr
    (line,) = _evaluate_result(trained, "--components.nope.x", "1").stderr.strip().splitlines()
    assert line.startswith("error: ") and "components.nope.x" in line
    unknown = _evaluate_result(trained, "--bogus", "1")
    assert unknown.returncode == 2 and unknown.stderr.strip() == "error: No such option '--bogus'."
