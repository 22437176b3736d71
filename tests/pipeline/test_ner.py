"""The `lsllama_ner` component on a tiny random model: it learns, decodes validly, saves."""

import random

import numpy
import pytest
import spacy
from spacy.training import Example

from spacy_lsllama.layers.transformer_model import get_settings
from spacy_lsllama.testing import encoder_nlp, train_shipped_config

NER_CONFIG = """
[nlp]
lang = "en"
pipeline = ["llm", "ner"]

[components]

[components.llm]
factory = "lsllama_transformer"

[components.llm.model]
@architectures = "spacy-lsllama.LlamaTransformer.v1"
name = "{name}"
bidirectional = true

[components.llm.model.lora]
@misc = "spacy-lsllama.LoRA.v1"
r = 4

[components.ner]
factory = "lsllama_ner"
scheme = "{scheme}"
"""

PEOPLE = ["Obama", "Merkel", "Macron", "Trudeau"]
PLACES = ["Paris", "Berlin", "Tokyo", "London"]


def generated_examples(nlp, n: int = 16, seed: int = 0) -> list[Example]:
    """Sentences like 'Merkel visited Tokyo .' with PER and LOC entities."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        text = f"{person} visited {place} today"
        entities = [(0, len(person), "PER"), (len(person) + 9, len(person) + 9 + len(place), "LOC")]
        examples.append(Example.from_dict(nlp.make_doc(text), {"entities": entities}))
    return examples


def make_nlp(tiny_model_dir, scheme="BIO"):
    spacy.util.fix_random_seed(0)
    config = spacy.util.load_config_from_str(
        NER_CONFIG.replace("{name}", str(tiny_model_dir)).replace("{scheme}", scheme)
    )
    return spacy.util.load_model_from_config(config, auto_fill=True)


def train(nlp, examples, steps=150, learn_rate=0.003):
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = learn_rate
    losses = []
    for _ in range(steps):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step)
        losses.append(step["ner"])
    return losses


@pytest.mark.parametrize("scheme", ["BIO", "BILUO"])
def test_training_drives_loss_down_and_gets_training_spans_right(tiny_model_dir, scheme):
    nlp = make_nlp(tiny_model_dir, scheme)
    examples = generated_examples(nlp)
    losses = train(nlp, examples)
    assert losses[-1] < losses[0] / 10
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == 1.0
    assert set(scores["ents_per_type"]) == {"PER", "LOC"}


def test_predicted_entities_carry_confidence(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir)
    train(nlp, generated_examples(nlp), steps=30)
    doc = nlp("Macron visited Berlin today")
    assert doc.ents
    assert all(0.0 < ent._.lsllama_score <= 1.0 for ent in doc.ents)


def test_untrained_decoding_gives_valid_spans(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir)
    nlp.initialize(lambda: generated_examples(nlp))
    for doc in nlp.pipe(["Obama visited Paris today", " ", "", "Tokyo , Tokyo and Berlin ."]):
        for ent in doc.ents:
            assert ent.label_ in ("PER", "LOC") and len(ent) >= 1


def decoded(ner, words, rows):
    """The entities `ner` sets from per-token tag probabilities (rows of tag: probability)."""
    doc = spacy.blank("en").make_doc(" ".join(words))
    probs = numpy.full((len(words), len(ner.tags)), 0.01, dtype="float32")
    for i, row in enumerate(rows):
        for tag, p in row.items():
            probs[i, ner.tags.index(tag)] = p
    ner.set_annotations([doc], [probs])
    return [(ent.text, ent.label_) for ent in doc.ents]


def test_viterbi_decodes_valid_spans_where_greedy_reads_each_token_alone(tiny_model_dir, tmp_path):
    nlp = make_nlp(tiny_model_dir)
    nlp.initialize(lambda: generated_examples(nlp))
    words = ["in", "Paris", "Berlin"]
    rows = [{"O": 0.9}, {"I-LOC": 0.6, "B-LOC": 0.3}, {"I-PER": 0.5, "I-LOC": 0.45}]
    # viterbi: the best valid sequence, O B-LOC I-LOC (I-LOC may not follow O)
    assert decoded(nlp.get_pipe("ner"), words, rows) == [("Paris Berlin", "LOC")]
    # greedy: O I-LOC I-PER, two entities by conlleval's rules (an I- after O starts one)
    nlp.to_disk(tmp_path / "pipeline")
    greedy = spacy.load(
        tmp_path / "pipeline", config={"components": {"ner": {"decoding": "greedy"}}}
    )
    assert decoded(greedy.get_pipe("ner"), words, rows) == [("Paris", "LOC"), ("Berlin", "PER")]
    with pytest.raises(ValueError, match="decoding must be one of"):
        spacy.load(tmp_path / "pipeline", config={"components": {"ner": {"decoding": "beam"}}})


def test_outside_penalty_trades_precision_for_recall_at_prediction_time(tiny_model_dir, tmp_path):
    nlp = make_nlp(tiny_model_dir)
    nlp.initialize(lambda: generated_examples(nlp))
    nlp.to_disk(tmp_path / "pipeline")
    words = ["met", "Ann", "today"]
    rows = [{"O": 0.9}, {"O": 0.6, "B-PER": 0.35}, {"O": 0.9}]
    assert decoded(nlp.get_pipe("ner"), words, rows) == []
    for decoding in ("viterbi", "greedy"):
        settings = {"decoding": decoding, "outside_penalty": 1.0}
        tuned = spacy.load(tmp_path / "pipeline", config={"components": {"ner": settings}})
        ner = tuned.get_pipe("ner")
        # log 0.6 - 1 < log 0.35: Ann becomes a person; log 0.9 - 1 still beats 0.01
        assert decoded(ner, words, rows) == [("Ann", "PER")]
        ner.outside_penalty = -1.0
        assert decoded(ner, words, [{"O": 0.3, "B-PER": 0.7}] * 3) == []
    doc = spacy.blank("en").make_doc("met Ann today")
    probs = numpy.asarray([[0.9 if t == "O" else 0.01 for t in ner.tags]] * 3, dtype="float32")
    probs[1, ner.tags.index("O")], probs[1, ner.tags.index("B-PER")] = 0.6, 0.35
    tuned.get_pipe("ner").outside_penalty = 1.0
    tuned.get_pipe("ner").set_annotations([doc], [probs])
    assert doc.ents[0]._.lsllama_score == pytest.approx(0.35)  # the model's, not penalised
    for bad in ("high", float("inf")):
        with pytest.raises(ValueError, match="outside_penalty must be a finite number"):
            type(ner)(nlp.vocab, ner.model, outside_penalty=bad)


def test_round_trip_gives_identical_entities_and_scores(tiny_model_dir, tmp_path):
    nlp = make_nlp(tiny_model_dir)
    train(nlp, generated_examples(nlp), steps=30)
    texts = ["Merkel visited London today", "Trudeau visited Paris today"]
    nlp.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "ner" / "model.safetensors").exists()
    loaded = spacy.load(tmp_path / "pipeline")
    for before, after in zip(nlp.pipe(texts), loaded.pipe(texts)):
        assert [(e.text, e.label_) for e in before.ents] == [(e.text, e.label_) for e in after.ents]
        numpy.testing.assert_allclose(
            [e._.lsllama_score for e in before.ents],
            [e._.lsllama_score for e in after.ents],
            rtol=1e-6,
        )


def test_spans_key_writes_doc_spans_and_scores_them(tiny_model_dir):
    config = spacy.util.load_config_from_str(
        NER_CONFIG.replace("{name}", str(tiny_model_dir)).replace("{scheme}", "BIO")
    )
    config["components"]["ner"]["spans_key"] = "llm_ents"
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    examples = []
    for eg in generated_examples(nlp):
        reference = eg.reference
        reference.spans["llm_ents"] = list(reference.ents)
        reference.ents = []
        examples.append(Example(nlp.make_doc(reference.text), reference))
    train(nlp, examples)
    doc = nlp("Obama visited Tokyo today")
    assert not doc.ents
    assert [(s.text, s.label_) for s in doc.spans["llm_ents"]] == [
        ("Obama", "PER"),
        ("Tokyo", "LOC"),
    ]
    scores = doc.spans["llm_ents"].attrs["scores"]  # where spancat keeps them
    assert len(scores) == 2 and all(0.0 < score <= 1.0 for score in scores)
    assert nlp.evaluate(examples)["spans_llm_ents_f"] == 1.0


def test_training_data_without_entities_gives_a_clear_error(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir)
    examples = [Example.from_dict(nlp.make_doc("nothing here"), {"entities": []})]
    with pytest.raises(ValueError, match="No entity labels found"):
        nlp.initialize(lambda: examples)


CAUSAL = {
    # the recipe's top 10 layers become the tiny model's top one, kept causal
    "configs/ner.cfg": {
        "components.llm.model.unmasked_layers": "none",
        "components.llm.model.lora.layers": "top 1",
    },
    "configs/ner_transition.cfg": {"components.llm.model.bidirectional": False},
}


@pytest.mark.parametrize("config", sorted(CAUSAL))
def test_trains_with_spacy_train_from_a_config(tiny_model_dir, tmp_path, config):
    """The shipped configs train end to end through `spacy train`, causal override too."""
    docs = [eg.reference for eg in generated_examples(spacy.blank("en"), n=8)]
    overrides = {"training.max_steps": 4, "training.eval_frequency": 2, **CAUSAL[config]}
    loaded = train_shipped_config(config, docs, tiny_model_dir, tmp_path, **overrides)
    assert loaded.pipe_names == ["llm", "ner"]
    assert get_settings(loaded.get_pipe("llm").model).unmasked_spec == "none"


def test_a_label_is_refused_once_the_head_is_sized(tiny_model_dir):
    nlp = encoder_nlp(tiny_model_dir, lora=None)
    ner = nlp.add_pipe("lsllama_ner", config={"model": {"tok2vec": {"upstream": "llm"}}})
    assert ner.add_label("PER") == 1  # before initialization: taken
    examples = generated_examples(nlp, n=4)
    ner.initialize(lambda: examples, nlp=nlp)
    output = ner.model.get_ref("output_layer")
    assert ner.labels == ("PER", "LOC") and output.get_dim("nO") == len(ner.tags) == 5
    assert ner.add_label("PER") == 0
    with pytest.raises(ValueError, match="Cannot add the label 'ORG' to an initialized"):
        ner.add_label("ORG")
    with pytest.raises(ValueError, match="Cannot add the label 'ORG' to an initialized"):
        ner.initialize(lambda: examples, nlp=nlp, labels=["ORG", "PER"])
    assert ner.labels == ("PER", "LOC") and output.get_dim("nO") == len(ner.tags) == 5
    assert ner.predict([nlp.make_doc("Obama visited Paris")])[0].shape == (3, 5)
