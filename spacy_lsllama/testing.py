"""Test helpers shared by the tests and benchmarks: tiny random decoders saved like real
checkpoints, and small pipelines over them. Nothing here downloads anything."""

import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import spacy
import torch
from spacy.cli.train import train as spacy_train
from spacy.pipeline import EntityRuler, TextCategorizer, TrainablePipe
from spacy.tokens import Doc, DocBin
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModel, LlamaConfig, MistralConfig, Qwen2Config
from transformers.tokenization_utils_fast import PreTrainedTokenizerFast

from .layers.transformer_model import get_encoder
from .nn.encoder import LlamaEncoder
from .tagging.ray_engine import Payload, TaggerActor
from .tagging.records import Tagged

TRAINING_TEXT = [
    "Barack Obama visited Paris and Berlin with Angela Merkel last week.",
    "Apple and Google opened offices in London, New York and Tokyo.",
    "The café in Zürich serves crème brûlée; 北京 and 東京 are capitals. 🙂",
    "Shares of Microsoft rose 3 percent on Tuesday, analysts said.",
    "  Leading spaces, trailing spaces   and\nnewlines\n\tand tabs.  ",
] * 4

CONFIGS = {"llama": LlamaConfig, "mistral": MistralConfig, "qwen2": Qwen2Config}


def tiny_tokenizer(
    vocab_size: int = 512, texts: Iterable[str] = TRAINING_TEXT
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (like Llama 3, SmolLM2, Qwen2) trained on ``texts`` (in
    milliseconds on the default ones)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def build_tiny_model(
    path: Path,
    arch: str = "llama",
    *,
    seed: int = 0,
    n_layers: int = 2,
    hidden_size: int = 64,
    tokenizer: PreTrainedTokenizerFast | None = None,
) -> Path:
    """Save a tiny random decoder of the given architecture and its tokenizer (by default
    `tiny_tokenizer`) to `path`."""
    torch.manual_seed(seed)
    tokenizer = tokenizer or tiny_tokenizer()
    config = CONFIGS[arch](
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    model = AutoModel.from_config(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def trained_adapter_nlp(name: str | Path, **model_settings: object) -> spacy.language.Language:
    """An encoder pipeline whose LoRA B matrices are non-zero, as after training (seeded)."""
    torch.manual_seed(0)
    nlp = encoder_nlp(name, **model_settings)
    encoder = nlp.get_pipe("llm")
    assert isinstance(encoder, TrainablePipe)
    with torch.no_grad():
        for param_name, param in get_encoder(encoder.model).named_parameters():
            if "lora_B" in param_name:
                param.normal_(std=0.5)
    return nlp


def encoder_of(nlp: spacy.language.Language) -> LlamaEncoder:
    """The PyTorch encoder of a pipeline's `llm` component."""
    component = nlp.get_pipe("llm")
    assert isinstance(component, TrainablePipe)
    return get_encoder(component.model)


def base_weights(nlp: spacy.language.Language) -> dict[str, torch.Tensor]:
    """Copies of the adapted projections' base weights of a pipeline's `llm` encoder."""
    state = encoder_of(nlp).model.state_dict()
    return {k: v.clone() for k, v in state.items() if "base_layer" in k}


def encoder_nlp(name: str | Path, **model_settings: object) -> spacy.language.Language:
    """A blank English pipeline with an initialized `llm` encoder component."""
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "lsllama_transformer", name="llm", config={"model": {"name": str(name), **model_settings}}
    )
    nlp.initialize()
    return nlp


# A transition-based NER over the encoder: `NER_CONFIG.format(name=...)`.
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

[components.llm.model.lora]
@misc = "spacy-lsllama.LoRA.v1"
r = 4

[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
hidden_width = 32
maxout_pieces = 2
use_upper = true

[components.ner.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0

[components.ner.model.tok2vec.pooling]
@layers = "reduce_mean.v1"
"""


RULE_PATTERNS: list[dict[str, str | list[dict[str, Any]]]] = [
    {"label": "PERSON", "pattern": "Alice"},
    {"label": "PERSON", "pattern": [{"LOWER": "zoë"}, {"LOWER": "smith"}]},
    {"label": "ORG", "pattern": [{"LOWER": "acme"}, {"LOWER": "labs"}]},
]


def rule_pipeline(path: Path) -> Path:
    """Save a fast pipeline that sets ``doc.ents`` (PERSON, ORG) and ``doc.cats`` (POS, NEG).

    Built-in components only (an entity ruler and an untrained bag-of-words textcat), so it
    loads in a fraction of a second, in subprocesses too.
    """
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe(
        "textcat",
        config={
            "model": {
                "@architectures": "spacy.TextCatBOW.v3",
                "exclusive_classes": True,
                "ngram_size": 1,
                "no_output_layer": False,
            }
        },
    )
    assert isinstance(textcat, TextCategorizer)
    for label in ("POS", "NEG"):
        textcat.add_label(label)
    nlp.initialize()
    # Added after initialize(), which would reset the ruler's patterns.
    ruler = nlp.add_pipe("entity_ruler", before="textcat")
    assert isinstance(ruler, EntityRuler)
    ruler.add_patterns(RULE_PATTERNS)
    nlp.to_disk(path)
    return path


# An LS-unLLaMA entity recognizer over a tiny model: `lsllama_ner_nlp`.
LSLLAMA_NER_CONFIG = """
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
# float32 everywhere: "auto" picks bfloat16 on CPUs with AMX or AVX-512 BF16, and
# subprocesses and Ray actors see the host's CPU, not the tests' stand-in for it
dtype = "float32"

[components.llm.model.lora]
@misc = "spacy-lsllama.LoRA.v1"
r = 4

[components.ner]
factory = "lsllama_ner"
spans_key = {spans_key}
"""


def lsllama_ner_nlp(base_model: Path, *, spans_key: str | None = None) -> spacy.language.Language:
    """An LS-unLLaMA NER pipeline over ``base_model`` (`LSLLAMA_NER_CONFIG`), not initialized."""
    key = "null" if spans_key is None else f'"{spans_key}"'
    config = LSLLAMA_NER_CONFIG.replace("{name}", str(base_model)).replace("{spans_key}", key)
    return spacy.util.load_model_from_config(
        spacy.util.load_config_from_str(config), auto_fill=True
    )


def lsllama_ner_pipeline(
    path: Path, base_model: Path, *, spans_key: str | None = None, steps: int = 40
) -> Path:
    """Save an LS-unLLaMA NER pipeline over ``base_model``, trained a few steps on sentences
    like 'Merkel visited Tokyo today' (PER, LOC), so it predicts entities with scores."""
    from spacy.training import Example

    spacy.util.fix_random_seed(0)
    nlp = lsllama_ner_nlp(base_model, spans_key=spans_key)
    examples = []
    for person, place in zip(["Obama", "Merkel", "Macron", "Trudeau"] * 2, ["Paris", "Tokyo"] * 4):
        doc = nlp.make_doc(f"{person} visited {place} today")
        start = len(person) + 9
        spans = [(0, len(person), "PER"), (start, start + len(place), "LOC")]
        example = Example.from_dict(doc, {"entities": spans})
        if spans_key is not None:
            example.reference.spans[spans_key] = list(example.reference.ents)
            example.reference.ents = []
        examples.append(example)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.003
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(path)
    return path


class UnevenTaggerActor(TaggerActor):
    """A Ray actor (`RayEngine.actor_class`) that takes ``SLOW_BATCH_SECONDS`` longer on
    every other batch, so batches finish out of order on two actors."""

    def tag(self, batch: Payload) -> list[Tagged | None]:
        first_line = batch[0][0]
        if (first_line - 1) // len(batch) % 2 == 0:
            time.sleep(SLOW_BATCH_SECONDS)
        return super().tag(batch)


SLOW_BATCH_SECONDS = 0.4


class SlowStartTaggerActor(TaggerActor):
    """A Ray actor (`RayEngine.actor_class`) that takes ``SLOW_START_SECONDS`` to start, as
    a worker process importing torch does on a busy machine."""

    def __init__(self) -> None:
        time.sleep(SLOW_START_SECONDS)
        super().__init__()


SLOW_START_SECONDS = 3.0


def default_sigint() -> None:
    """For `subprocess.Popen(preexec_fn=...)`: Ctrl-C in the child as from a terminal, even
    when the tests run as a background job (a shell starts those with SIGINT ignored, which
    Python then keeps)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def train_shipped_config(
    config: str | Path, docs: list[Doc], base_model: Path, out: Path, **overrides: Any
) -> spacy.language.Language:
    """`spacy train` of a shipped config on `docs` (train and dev alike): its model-last."""
    data = out / "data.spacy"
    out.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs).to_disk(data)
    settings = {
        "paths.base_model": str(base_model),
        "paths.train": str(data),
        "paths.dev": str(data),
    }
    spacy_train(config, out / "training", overrides={**settings, **overrides})
    return spacy.load(out / "training" / "model-last")
