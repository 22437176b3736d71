"""spaCy's textcat components with the label-supervised classifier on the shipped configs."""

from pathlib import Path

import numpy
import pytest
import spacy
from spacy.training import Example

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.testing import train_shipped_config

CONFIGS = Path(__file__).parents[2] / "configs"
BUSINESS = [
    "Apple opened offices in London.",
    "Shares of Microsoft rose 3 percent on Tuesday.",
    "Google opened offices in New York and Tokyo.",
    "Shares of Apple rose, analysts said.",
]
BOTH = ["Shares of Apple rose in Zürich.", "Google opened a café in Berlin."]
OTHER = [
    "The café in Zürich serves crème brûlée.",
    "Leading spaces, trailing spaces and tabs.",
    "Barack Obama visited Paris and Berlin last week.",
    "北京 and 東京 are capitals. 🙂",
]


# The recipe's top 10 of 30 layers (unmasked, adapted) become the tiny model's top one.
TINY = {
    "components.llm.model.unmasked_layers": "top 1",
    "components.llm.model.lora.layers": "top 1",
}


def load_pipeline(base_model: Path, config: str = "textcat.cfg", **overrides) -> spacy.Language:
    """A pipeline from a shipped config, on a tiny base model."""
    overrides = {"paths.base_model": str(base_model), **TINY, **overrides}
    return spacy.util.load_model_from_config(
        spacy.util.load_config(CONFIGS / config, overrides=overrides), auto_fill=True
    )


def examples(nlp: spacy.Language, labelled: dict[str, list[str]]) -> list[Example]:
    """One example per text, with a one-hot doc.cats over the keys of `labelled`."""
    return [
        Example.from_dict(
            nlp.make_doc(text), {"cats": {name: float(name == label) for name in labelled}}
        )
        for label, texts in labelled.items()
        for text in texts
    ]


def train(nlp: spacy.Language, train_set: list[Example], steps: int) -> list[float]:
    """Full-batch updates with a fast learning rate; the classifier's loss at each step."""
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: train_set)
    optimizer.learn_rate = 0.003
    name = nlp.pipe_names[-1]
    losses = []
    for _ in range(steps):
        step = {}
        nlp.update(train_set, sgd=optimizer, losses=step)
        losses.append(step[name])
    return losses


def lora_b_weights(nlp: spacy.Language) -> list[numpy.ndarray]:
    encoder = get_encoder(nlp.get_pipe("llm").model)
    return [
        param.detach().numpy() for name, param in encoder.named_parameters() if "lora_B" in name
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "components.llm.model.unmasked_layers": "none",
            "components.textcat.model.pooling": "last",
        },
    ],
    ids=["unmasked-max", "causal-last"],
)
def test_textcat_learns_two_classes_through_the_encoder(tiny_model_dir, overrides):
    nlp = load_pipeline(tiny_model_dir, **overrides)
    train_set = examples(nlp, {"business": BUSINESS, "other": OTHER})
    losses = train(nlp, train_set, steps=25)
    assert losses[-1] < losses[0] / 2
    for text, label in zip(BUSINESS + OTHER, ["business"] * 4 + ["other"] * 4):
        cats = nlp(text).cats
        assert max(cats, key=cats.get) == label
        assert sum(cats.values()) == pytest.approx(1.0, abs=1e-5)
    # LoRA's B matrices start at zero: only a gradient through the pooling can move them.
    assert any(weights.any() for weights in lora_b_weights(nlp))


def test_multilabel_scores_labels_independently(tiny_model_dir):
    nlp = load_pipeline(tiny_model_dir, "textcat_multilabel.cfg")
    train_set = examples(nlp, {"business": BUSINESS, "other": OTHER})
    train_set += [
        Example.from_dict(nlp.make_doc(text), {"cats": {"business": 1.0, "other": 1.0}})
        for text in BOTH
    ]
    train(nlp, train_set, steps=80)
    for eg, doc in zip(train_set, nlp.pipe(eg.text for eg in train_set)):
        assert all(0.0 <= score <= 1.0 for score in doc.cats.values())
        assert {label for label, score in doc.cats.items() if score >= 0.5} == {
            label for label, value in eg.reference.cats.items() if value
        }


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.9, 1.01])
def test_multilabel_scorer_uses_the_component_threshold(tiny_model_dir, threshold):
    nlp = load_pipeline(tiny_model_dir, "textcat_multilabel.cfg")
    train_set = examples(nlp, {"business": BUSINESS, "other": OTHER})
    train(nlp, train_set, steps=1)
    nlp.get_pipe("textcat_multilabel").cfg["threshold"] = threshold
    predicted = [doc.cats for doc in nlp.pipe(eg.text for eg in train_set)]
    hits = [
        (score >= threshold, bool(eg.reference.cats[label]))
        for eg, cats in zip(train_set, predicted)
        for label, score in cats.items()
    ]
    true_positives = sum(guess and gold for guess, gold in hits)
    guessed = sum(guess for guess, _ in hits)
    scores = nlp.evaluate(train_set)
    assert scores["cats_micro_r"] == true_positives / len(train_set)
    assert scores["cats_micro_p"] == (true_positives / guessed if guessed else 0.0)


@pytest.mark.parametrize("config", ["textcat.cfg", "textcat_multilabel.cfg"])
def test_configured_labels_absent_from_the_data_are_refused(tiny_model_dir, config):
    nlp = load_pipeline(tiny_model_dir, config)
    nlp.config["initialize"]["components"][nlp.pipe_names[-1]] = {"labels": ["POS", "NEG"]}
    train_set = examples(nlp, {"business": BUSINESS, "other": OTHER})
    with pytest.raises(ValueError, match=r"labels is positive.*\['business', 'other'\]"):
        nlp.initialize(lambda: train_set)


@pytest.mark.parametrize("config", ["textcat.cfg", "textcat_multilabel.cfg"])
def test_configured_labels_on_data_without_cats_are_refused(tiny_model_dir, config):
    nlp = load_pipeline(tiny_model_dir, config)
    nlp.config["initialize"]["components"][nlp.pipe_names[-1]] = {"labels": ["POS", "NEG"]}
    train_set = [Example.from_dict(nlp.make_doc(text), {}) for text in BUSINESS]
    with pytest.raises(ValueError, match="has doc.cats"):
        nlp.initialize(lambda: train_set)


@pytest.mark.parametrize("config", ["textcat.cfg", "textcat_multilabel.cfg"])
def test_data_without_cats_and_no_configured_labels_is_refused(tiny_model_dir, config):
    """spaCy's own check: without cats in the data the component finds no labels."""
    nlp = load_pipeline(tiny_model_dir, config)
    train_set = [Example.from_dict(nlp.make_doc(text), {}) for text in BUSINESS]
    with pytest.raises(ValueError, match="(?i)labels"):
        nlp.initialize(lambda: train_set)


@pytest.mark.parametrize("config", ["textcat.cfg", "textcat_multilabel.cfg"])
def test_trained_classifier_round_trips_with_identical_cats(tiny_model_dir, tmp_path, config):
    nlp = load_pipeline(tiny_model_dir, config)
    train(nlp, examples(nlp, {"business": BUSINESS, "other": OTHER}), steps=3)
    texts = [*BUSINESS, "", *OTHER]
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    for before, after in zip(nlp.pipe(texts), loaded.pipe(texts)):
        assert before.cats == after.cats
    assert set(loaded("").cats) == {"business", "other"}


def test_label_added_after_training_leaves_predictions_unchanged(tiny_model_dir):
    nlp = load_pipeline(tiny_model_dir)
    train(nlp, examples(nlp, {"business": BUSINESS, "other": OTHER}), steps=2)
    before = [doc.cats for doc in nlp.pipe(BUSINESS)]
    nlp.get_pipe("textcat").add_label("sports")
    for old, doc in zip(before, nlp.pipe(BUSINESS)):
        assert doc.cats["sports"] == pytest.approx(0.0, abs=1e-6)
        for label, score in old.items():
            assert doc.cats[label] == pytest.approx(score, abs=1e-6)


@pytest.mark.parametrize("config", ["textcat.cfg", "textcat_multilabel.cfg"])
def test_trains_with_spacy_train_on_the_recipe_schedule(tiny_model_dir, tmp_path, config):
    """The shipped configs train through `spacy train`, stopping where the schedule ends."""
    docs = [
        eg.reference for eg in examples(spacy.blank("en"), {"business": BUSINESS, "other": OTHER})
    ]
    schedule = {
        "training.optimizer.learn_rate.total_steps": 3,
        "training.optimizer.learn_rate.warmup_steps": 1,
        "training.eval_frequency": 1,
    }
    trained = train_shipped_config(
        CONFIGS / config, docs, tiny_model_dir, tmp_path, **schedule, **TINY
    )
    assert trained.config.interpolate()["training"]["max_steps"] == 3
    assert set(trained("Shares of Apple rose.").cats) == {"business", "other"}
