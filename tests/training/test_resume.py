"""`lsllama resume`'s core: a `spacy train` run of a shipped config, stopped, trained on."""

import json
import shutil
from itertools import islice
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.cli.train import train as spacy_train
from spacy.tokens import DocBin
from spacy.training import loop
from spacy.util import registry
from thinc.api import Config

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.testing import build_tiny_model
from spacy_lsllama.training.progress import training_progress_v1
from spacy_lsllama.training.resume import (
    CHECKPOINT,
    FROM_STEP,
    PREVIOUS_BEST,
    Progress,
    ResumeError,
    RunState,
    continuation_config,
    find_state,
    last_step_unscored,
    resume,
)

TOTAL_STEPS = 12
STOP_AT = TOTAL_STEPS - 1  # the updates before the stop
TEXTS = [("Obama visited Paris today", "PER", "LOC"), ("Merkel visited Tokyo today", "PER", "LOC")]


@registry.callbacks("test.stop_at.v1")
def stop_at(step: int):
    """The progress callback, and Ctrl-C before update ``step``."""
    record = training_progress_v1()

    def callback(nlp, info):
        if info["step"] == step:
            raise KeyboardInterrupt
        record(nlp, info)

    return callback


def docs(nlp):
    out = []
    for text, first, second in TEXTS * 4:
        doc = nlp.make_doc(text)
        words = text.split()
        start = len(words[0]) + len(words[1]) + 2
        doc.ents = [
            doc.char_span(0, len(words[0]), first),
            doc.char_span(start, start + len(words[2]), second),
        ]
        out.append(doc)
    return out


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """configs/ner.cfg on a tiny model, stopped by Ctrl-C after 11 of its 12 steps."""
    root = tmp_path_factory.mktemp("stopped")
    base = build_tiny_model(root / "llama")
    DocBin(docs=docs(spacy.blank("en"))).to_disk(root / "data.spacy")
    overrides = {
        "paths.base_model": str(base),
        "paths.train": str(root / "data.spacy"),
        "paths.dev": str(root / "data.spacy"),
        "components.llm.model.unmasked_layers": "top 1",
        "components.llm.model.lora.layers": "top 1",
        "training.optimizer.learn_rate.total_steps": TOTAL_STEPS,
        "training.optimizer.learn_rate.warmup_steps": 2,
        "training.eval_frequency": 4,
        "training.before_update": {"@callbacks": "test.stop_at.v1", "step": STOP_AT},
    }
    with pytest.raises(KeyboardInterrupt):
        spacy_train("configs/ner.cfg", root / "out", overrides=overrides)
    return root / "out"


@pytest.fixture
def run(stopped_run, tmp_path):
    """A copy of the stopped run to resume."""
    return Path(shutil.copytree(stopped_run, tmp_path / "out"))


def trained_weights(model_dir: Path) -> dict[str, numpy.ndarray]:
    """The LoRA matrices and the NER head of a saved pipeline."""
    nlp = spacy.load(model_dir)
    weights = {
        name: param.detach().numpy().copy()
        for name, param in get_encoder(nlp.get_pipe("llm").model).named_parameters()
        if "lora_" in name
    }
    for index, node in enumerate(nlp.get_pipe("ner").model.walk()):
        for name in node.param_names:
            if node.has_param(name):
                weights[f"ner.{index}.{name}"] = numpy.asarray(node.get_param(name)).copy()
    assert any("lora_B" in name for name in weights)
    return weights


def meta(model_dir: Path) -> dict:
    return json.loads((model_dir / "meta.json").read_text())


def test_saved_pipelines_record_the_updates_they_hold(stopped_run):
    # Ctrl-C before update 11: model-last holds 11; the evaluations after updates 1, 5, 9
    assert meta(stopped_run / "model-last")["lsllama_training"]["steps"] == STOP_AT
    assert meta(stopped_run / "model-best")["lsllama_training"]["steps"] in (1, 5, 9)


def test_resume_trains_on_from_the_saved_weights_to_the_end_of_the_budget(run):
    before = trained_weights(run / "model-last")
    state = resume(run, warmup_steps=20)
    # spaCy makes max_steps + 1 updates; the last two here are the ramp's first, at 1/20 of
    # the schedule's 3e-5 for step 11 (an Adam step: at most 1.5e-6 per weight), and one
    # at rate 0 (the end of the linear decay), so the weights are those saved at the stop
    # give or take that step: a continuation that started from fresh weights would differ
    assert state.finished and (state.progress.steps, state.total_steps) == (13, 12)
    after = trained_weights(run / "model-last")
    assert after.keys() == before.keys()
    for name, value in before.items():
        numpy.testing.assert_allclose(after[name], value, rtol=0, atol=1e-5, err_msg=name)
    assert sorted(p.name for p in run.iterdir()) == ["model-best", "model-last", "resume.cfg"]


def test_the_first_update_of_a_continuation_is_made(stopped_run, tmp_path):
    """Its rate is the run's for that step, ramped: a quarter of it with a 4-step ramp."""
    state = find_state(stopped_run)
    config = continuation_config(state, tmp_path / CHECKPOINT, warmup_steps=4)

    def schedule(config: Config):
        return registry.resolve({"rate": config["training"]["optimizer"]["learn_rate"]})["rate"]

    whole = list(islice(schedule(state.config), TOTAL_STEPS + 1))
    assert whole[STOP_AT] > 0
    continued = list(islice(schedule(config), 2))
    assert continued == [whole[STOP_AT] / 4, whole[STOP_AT + 1] / 2]


def test_the_continuation_scores_the_last_step_as_the_run_would_have(run, monkeypatch):
    """The run scores every 4 steps, so its last step (12) too; spaCy counts a continuation's
    evaluations from its own first step (11), so that one is scored after training."""
    scored_after = []  # the updates the weights hold at each evaluation
    evaluation = loop.create_evaluation_callback

    def recorded(nlp, dev_corpus, weights):
        evaluate = evaluation(nlp, dev_corpus, weights)

        def call():
            scored_after.append(nlp.meta["lsllama_training"]["steps"])
            return evaluate()

        return call

    monkeypatch.setattr(loop, "create_evaluation_callback", recorded)
    resume(run)
    assert scored_after == [STOP_AT + 1, TOTAL_STEPS + 1]
    weights = find_state(run).config["training"]["score_weights"]
    assert weights.keys() <= meta(run / "model-last")["performance"].keys()


def test_only_a_shifted_grid_leaves_the_last_step_unscored(stopped_run, tmp_path):
    state = find_state(stopped_run)
    assert not last_step_unscored(state.config)  # 12 steps, scored every 4: spaCy scores 12
    for done, unscored in ((STOP_AT, True), (4, False), (5, True)):
        stopped = RunState(state.path, Progress(done, 1.0), state.config, state.total_steps)
        config = continuation_config(stopped, tmp_path / CHECKPOINT, warmup_steps=0)
        assert last_step_unscored(config) is unscored, done


def test_the_continuation_trains_the_adapters_and_the_head(run):
    before = trained_weights(run / "model-last")
    resume(run, warmup_steps=0)  # its first update: rate 0.1 x 3e-4 (step 11 of 12)
    after = trained_weights(run / "model-last")
    changed = {name for name, value in before.items() if not numpy.array_equal(after[name], value)}
    assert any("lora_B" in name for name in changed) and any("ner." in name for name in changed)


def test_resume_keeps_the_best_pipeline_of_the_whole_run(run):
    best = meta(run / "model-best")
    best["performance"]["ents_f"] = 1.0  # better than anything the continuation can score
    (run / "model-best" / "meta.json").write_text(json.dumps(best))
    resume(run)
    assert meta(run / "model-best") == best
    assert not (run / PREVIOUS_BEST).exists() and not (run / CHECKPOINT).exists()


def test_a_finished_run_is_left_as_it_is(run):
    resume(run)
    files = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    state = resume(run)
    assert state.finished and {p: p.stat().st_mtime_ns for p in run.rglob("*")} == files


def test_a_continuation_of_a_continuation_counts_from_the_start(stopped_run, tmp_path):
    run = find_state(stopped_run)
    early = RunState(run.path, Progress(steps=3, seconds=1.0), run.config, run.total_steps)
    config = continuation_config(early, tmp_path / CHECKPOINT, warmup_steps=5)
    rate = config["training"]["optimizer"]["learn_rate"]
    assert (rate["@schedules"], rate["start_step"], rate["warmup_steps"]) == (FROM_STEP, 3, 5)
    assert rate["schedule"] == run.config["training"]["optimizer"]["learn_rate"]
    assert config["training"]["max_steps"] == TOTAL_STEPS - 3
    assert config["training"]["seed"] == run.config["training"]["seed"] + 3
    assert config["components"]["ner"] == {
        "source": str((tmp_path / CHECKPOINT).resolve()),
        "component": "ner",
    }
    # that continuation saved after 4 more updates: the next starts at 7 of the same 12
    saved = tmp_path / "model-last"
    saved.mkdir()
    config.to_disk(saved / "config.cfg")
    progress = {"lsllama_training": {"steps": 7, "seconds": 2.0}}
    (saved / "meta.json").write_text(json.dumps(progress))
    second = find_state(tmp_path)
    assert (second.total_steps, second.progress.steps) == (TOTAL_STEPS, 7)
    rate = continuation_config(second, tmp_path / CHECKPOINT, 5)["training"]["optimizer"]
    assert rate["learn_rate"]["start_step"] == 7
    assert rate["learn_rate"]["schedule"] == run.config["training"]["optimizer"]["learn_rate"]


def test_errors_name_the_run_and_what_is_missing(run, tmp_path):
    with pytest.raises(ResumeError, match="no such training output directory"):
        resume(tmp_path / "nowhere")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(ResumeError, match="stopped before its first evaluation"):
        resume(fresh)
    config = Config().from_disk(run / "model-last" / "config.cfg", interpolate=False)
    config["paths"]["train"] = str(tmp_path / "moved.spacy")
    config.to_disk(run / "model-last" / "config.cfg")
    with pytest.raises(ResumeError, match=r"corpora\.train\.path .*moved\.spacy not found"):
        resume(run)
    assert (run / "model-last").is_dir()  # nothing moved before the check
    untracked = meta(run / "model-last")
    del untracked["lsllama_training"]
    (run / "model-last" / "meta.json").write_text(json.dumps(untracked))
    with pytest.raises(ResumeError, match="training_progress.v1"):
        resume(run)
