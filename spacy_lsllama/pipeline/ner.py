"""The `lsllama_ner` component: label-supervised token classification into entity spans.

Every token's vector from the shared encoder goes through dropout and a linear softmax head
(the paper's token classification); training is cross-entropy on BIO or BILUO tags, and
prediction is constrained Viterbi decoding, so the spans are always valid (or, for comparison,
each token's most probable tag: `decoding = "greedy"`).
"""

import math
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any

import numpy
import srsly
from spacy import util
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, offsets_to_biluo_tags, validate_get_examples
from spacy.util import filter_spans
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, SequenceCategoricalCrossentropy, set_dropout_rate
from thinc.types import Floats2d

from ..layers.params import read_thinc_params, write_thinc_params
from .scorers import score_seqeval_ents
from .tag_schemes import (
    biluo_to_scheme,
    boundary_masks,
    scheme_to_spans,
    tag_names,
    transition_mask,
    viterbi,
)

DEFAULT_MODEL_STR = """
[model]
@architectures = "spacy-lsllama.TokenClassifier.v1"
dropout = 0.1

[model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[model.tok2vec.pooling]
@layers = "reduce_mean.v1"
"""
DEFAULT_MODEL = util.load_config_from_str(DEFAULT_MODEL_STR)["model"]
DECODINGS = ("viterbi", "greedy")


@Language.factory(
    "lsllama_ner",
    assigns=["doc.ents", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "scheme": "BIO",
        "spans_key": None,
        "score_extension": "lsllama_score",
        "decoding": "viterbi",
        "outside_penalty": 0.0,
        "scorer": {"@scorers": "spacy-lsllama.seqeval_ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_lsllama_ner(
    nlp: Language,
    name: str,
    model: Model[list[Doc], list[Floats2d]],
    scheme: str,
    spans_key: str | None,
    score_extension: str | None,
    decoding: str,
    outside_penalty: float,
    scorer: Callable[..., dict] | None,
) -> "LabelSupervisedNER":
    """Entity recognizer over the shared Llama encoder.

    scheme: "BIO" (the paper's) or "BILUO" tags. spans_key: write `doc.spans[spans_key]`
    instead of `doc.ents`, with the scores in the group's `attrs["scores"]` as spancat keeps
    them. score_extension: Span extension that receives each entity's confidence (mean
    probability of its decoded tags); null turns it off. It was "score" before 0.2: saved
    pipelines keep the name their config gives. decoding: "viterbi" (the most probable
    tag sequence that forms valid spans) or "greedy" (each token's most probable tag, read
    into spans by conlleval's rules: how many token classifiers decode; a prediction-time
    setting, to compare the two on a trained model). outside_penalty: subtracted from the
    log-probability of the outside tag O before decoding; above 0 the pipeline finds more
    entities (recall up, precision down), below 0 fewer. A prediction-time setting: choose
    it on dev with `lsllama tune-ner`. scorer: scores for `nlp.evaluate` (seqeval's entity
    scores by default).
    """
    return LabelSupervisedNER(
        nlp.vocab,
        model,
        name,
        scheme=scheme,
        spans_key=spans_key,
        score_extension=score_extension,
        decoding=decoding,
        outside_penalty=outside_penalty,
        scorer=scorer,
    )


class LabelSupervisedNER(TrainablePipe):
    """Token classification with constrained decoding into entity spans."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "lsllama_ner",
        *,
        scheme: str = "BIO",
        spans_key: str | None = None,
        score_extension: str | None = "lsllama_score",
        decoding: str = "viterbi",
        outside_penalty: float = 0.0,
        scorer: Callable[..., dict] | None = score_seqeval_ents,
    ) -> None:
        tag_names([], scheme)  # validates the scheme
        if decoding not in DECODINGS:
            raise ValueError(f"[{name}] decoding must be one of {DECODINGS}, not {decoding!r}")
        if not isinstance(outside_penalty, int | float) or not math.isfinite(outside_penalty):
            raise ValueError(
                f"[{name}] outside_penalty must be a finite number, not {outside_penalty!r}"
            )
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: dict[str, Any] = {
            "labels": [],
            "scheme": scheme,
            "spans_key": spans_key,
            "score_extension": score_extension,
        }
        # prediction-time settings, so not in cfg: a saved cfg must not override the config
        self.decoding = decoding
        self.outside_penalty = outside_penalty
        if score_extension and not Span.has_extension(score_extension):
            Span.set_extension(score_extension, default=None)

    @property
    def spans_key(self) -> str | None:
        """The `doc.spans` key the entities go to; None when they go to `doc.ents`."""
        return self.cfg["spans_key"]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def tags(self) -> list[str]:
        return tag_names(self.labels, self.cfg["scheme"])

    def add_label(self, label: str) -> int:
        """Add an entity label before initialization; 0 if it is there already.

        An initialized (or loaded) head has one output per tag of its labels and none for a
        new one: a new label is refused then, as spaCy refuses one for a head it cannot
        resize. Name every label before initializing, and train again.
        """
        if not isinstance(label, str):
            raise ValueError(f"Entity labels must be strings, got {label!r}")
        if label in self.labels:
            return 0
        if self.model.get_ref("output_layer").has_param("W"):
            raise ValueError(
                f"[{self.name}] Cannot add the label {label!r} to an initialized component: "
                f"its head has {len(self.tags)} outputs, the tags of {list(self.labels)}, "
                "and none for a new label. Name every label before initialization (in the "
                f"training data or [initialize.components.{self.name}.labels]) and train a "
                "new component."
            )
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Language | None = None,
        labels: Iterable[str] | None = None,
    ) -> None:
        """Take the labels from the data (or `labels`) and size the head to their tags."""
        validate_get_examples(get_examples, "LabelSupervisedNER.initialize")
        if labels is None:
            labels = {span.label_ for eg in get_examples() for span in self._gold_spans(eg)}
        for label in sorted(labels):
            self.add_label(label)
        if not self.labels:
            where = f"doc.spans['{self.cfg['spans_key']}']" if self.cfg["spans_key"] else "ents"
            raise ValueError(
                f"[{self.name}] No entity labels found: the training examples have no {where}. "
                "Check the training corpus, or pass labels via [initialize.components]."
            )
        self.model.get_ref("output_layer").set_dim("nO", len(self.tags), force=True)
        sample = [eg.reference for eg in islice(get_examples(), 10)]
        self.model.initialize(X=sample)

    def predict(self, docs: Iterable[Doc]) -> list[Floats2d]:
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [self.model.ops.alloc2f(len(doc), len(self.tags)) for doc in docs]
        return self.model.predict(docs)

    def set_annotations(self, docs: Iterable[Doc], scores: list[Floats2d]) -> None:
        """Decode each doc's tag probabilities into spans under the scheme's constraints."""
        tags = self.tags
        allowed = transition_mask(tags, self.cfg["scheme"])
        start, end = boundary_masks(tags, self.cfg["scheme"])
        extension = self.cfg["score_extension"]
        outside = numpy.asarray([tag == "O" for tag in tags])
        for doc, probs in zip(docs, scores):
            probs = self.model.ops.to_numpy(probs)
            log_probs = numpy.log(probs + 1e-12) - self.outside_penalty * outside
            if self.decoding == "greedy":
                best = log_probs.argmax(axis=1)
            else:
                best = viterbi(log_probs, allowed, start, end)
            spans, confidences = [], []
            for first, last, label in scheme_to_spans([tags[i] for i in best]):
                span = Span(doc, first, last, label=label)
                chosen = probs[numpy.arange(first, last), best[first:last]]
                confidences.append(float(chosen.mean()))
                if extension:
                    span._.set(extension, confidences[-1])
                spans.append(span)
            key = self.spans_key
            if key:
                doc.spans[key] = SpanGroup(
                    doc, name=key, spans=spans, attrs={"scores": confidences}
                )
            else:
                doc.ents = spans

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optimizer | None = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        examples = list(examples)
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, scores)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: list[Floats2d]):
        """Mean token cross-entropy; tokens with unknown gold tags are left out."""
        loss_func = SequenceCategoricalCrossentropy(names=self.tags, normalize=True)
        truths = [self._gold_tags(eg) for eg in examples]
        # thinc takes None as a missing label; its type hints leave None out
        d_scores, loss = loss_func(scores, truths)  # type: ignore[arg-type]
        if self.model.ops.xp.isnan(loss):
            raise ValueError(f"[{self.name}] The loss is NaN: check the learning rate.")
        return float(loss), d_scores

    def _gold_spans(self, example: Example) -> list[Span]:
        key = self.cfg["spans_key"]
        return list(example.reference.spans.get(key, [])) if key else list(example.reference.ents)

    def _gold_tags(self, example: Example) -> list[str | None]:
        if self.cfg["spans_key"]:
            spans = filter_spans(example.get_aligned_spans_y2x(self._gold_spans(example)))
            offsets = [(span.start_char, span.end_char, span.label_) for span in spans]
            biluo = offsets_to_biluo_tags(example.predicted, offsets)
        else:
            biluo = example.get_aligned_ner()
        return biluo_to_scheme(biluo, self.cfg["scheme"])

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = tuple()) -> None:
        """Labels and settings as JSON, the head's weights as safetensors."""
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "model.safetensors": lambda p: write_thinc_params(self.model, p),
        }
        util.to_disk(path, serialize, exclude)

    def from_disk(
        self, path: str | Path, *, exclude: Iterable[str] = tuple()
    ) -> "LabelSupervisedNER":
        deserialize = {
            "cfg": lambda p: self.cfg.update(srsly.read_json(p)),
            "model.safetensors": lambda p: read_thinc_params(self.model, p),
        }
        util.from_disk(path, deserialize, exclude)
        return self
