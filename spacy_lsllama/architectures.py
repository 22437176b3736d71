"""Registered architectures: the configs' interface to spacy-lsllama's models."""

from collections.abc import Callable
from functools import partial

from spacy.ml.models.textcat import NEG_VALUE, resize_and_set_ref
from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData
from spacy_transformers.layers import TransformerListener
from thinc.api import (
    Dropout,
    Linear,
    Model,
    Softmax_v2,
    chain,
    glorot_uniform_init,
    resizable,
    with_array,
)
from thinc.layers.chain import init as init_chain
from thinc.layers.resizable import resize_linear_weighted
from thinc.types import Floats2d

from .layers.pooling import pieces2vec
from .layers.transformer_model import LlamaTransformerModel
from .nn.encoder import EncoderSettings
from .nn.lora import LLAMA_ATTENTION, LoraSettings


@registry.architectures("spacy-lsllama.LlamaTransformer.v1")
def build_llama_transformer_v1(
    name: str,
    bidirectional: bool = True,
    lora: LoraSettings | None = None,
    dtype: str = "auto",
    attn_implementation: str = "sdpa",
    gradient_checkpointing: bool = False,
    window: int = 512,
    stride: int = 384,
    rows_per_forward: int = 8,
    merge_lora: bool = True,
    embed_base_model: bool = False,
    compile: bool = False,
) -> Model[list[Doc], FullTransformerBatch]:
    """LlamaTransformer.v2 with every layer unmasked or none, and no frozen-prefix cache."""
    return build_llama_transformer_v2(
        name,
        bidirectional=bidirectional,
        lora=lora,
        dtype=dtype,
        attn_implementation=attn_implementation,
        gradient_checkpointing=gradient_checkpointing,
        window=window,
        stride=stride,
        rows_per_forward=rows_per_forward,
        merge_lora=merge_lora,
        embed_base_model=embed_base_model,
        compile=compile,
        prefix_cache_mb=0,
    )


@registry.architectures("spacy-lsllama.LlamaTransformer.v2")
def build_llama_transformer_v2(
    name: str,
    bidirectional: bool | None = None,
    unmasked_layers: str | None = None,
    lora: LoraSettings | None = None,
    dtype: str = "auto",
    attn_implementation: str = "sdpa",
    gradient_checkpointing: bool = False,
    window: int = 512,
    stride: int = 384,
    rows_per_forward: int = 8,
    merge_lora: bool = True,
    embed_base_model: bool = False,
    compile: bool = False,
    prefix_cache_mb: int = 2048,
    prefix_cache_predict: bool = False,
) -> Model[list[Doc], FullTransformerBatch]:
    """A Llama-family decoder as a shared encoder (LS-unLLaMA, or LS-LLaMA when causal).

    name: local Hugging Face directory, `.gguf` file, or hub name (needs a reachable hub).
    unmasked_layers: the layers that attend both ways (LS-unLLaMA): "all", "none" (the
        causal mask kept in every layer: LS-LLaMA), "top K", "middle K", "bottom K" or "A:B"
        (layers A to B-1). Padding and packed windows stay masked in every layer. The one
        source of truth: set, it decides, whatever `bidirectional` says (the shipped
        configs set only this). null follows `bidirectional`.
    bidirectional: the older shorthand, read only when `unmasked_layers` is null: true or
        null is "all", false is "none". false with an unmasked block is a config error;
        true beside `unmasked_layers` changes nothing (saved pipelines hold both).
    lora: LoRA settings (`spacy-lsllama.LoRA.v3`: rank, target modules, layers); null
        freezes the whole decoder, so that only the heads train (feature extraction).
    dtype: "auto" (decided where the encoder is placed, `nn.precision`: bfloat16 on a GPU
        and on a CPU with bfloat16 units, float32 otherwise), "float32", "bfloat16" or
        "float16".
    attn_implementation: "sdpa" or "eager" (the only kernels that take the block masks).
    gradient_checkpointing: trade compute for memory in training.
    window, stride: documents longer than `window` pieces run as overlapping windows every
        `stride` pieces (window/2 <= stride <= window), stitched so each piece keeps the
        state from the window where it has most context.
    rows_per_forward: rows per forward pass. Short windows are packed into rows as wide as
        the longest window, each attending only to itself; rows run fullest first, each
        chunk cut to its fullest row, so mixed lengths compute little padding.
    merge_lora: predict with the LoRA update folded into the base weights, which saves the
        adapters' extra work; training and embedding the base unfold it again (half-precision
        weights are put back from a copy, exactly).
    embed_base_model: save the full base weights with the pipeline (self-contained).
    compile: run the decoder layers through torch.compile (`nn.compile`), in prediction
        and in training (unless gradients are checkpointed), after a compilation of some
        seconds at the first batch; needs a C++ compiler. Gains are per host (docs/results.md).
    prefix_cache_mb: memory for the frozen-prefix cache (0: off). When the lowest layers
        carry no adapter (`lora.layers`), training computes their output once per window
        and reuses it every epoch: each step runs only the adapted layers. Once full, the
        remaining windows are computed at every step (a warning says so).
    prefix_cache_predict: also cache during prediction (e.g. a dev set scored repeatedly
        in training); off, prediction caches nothing.
    """
    settings = EncoderSettings(
        name=str(name),
        bidirectional=bidirectional,
        unmasked_layers=unmasked_layers,
        lora=lora,
        dtype=dtype,
        attn_implementation=attn_implementation,
        gradient_checkpointing=gradient_checkpointing,
        window=window,
        stride=stride,
        rows_per_forward=rows_per_forward,
        merge_lora=merge_lora,
        embed_base_model=embed_base_model,
        compile=compile,
        prefix_cache_mb=prefix_cache_mb,
        prefix_cache_predict=prefix_cache_predict,
    )
    return LlamaTransformerModel(settings)


@registry.misc("spacy-lsllama.LoRA.v1")
def configure_lora_v1(
    r: int = 12,
    alpha: int = 32,
    dropout: float = 0.1,
    target_modules: list[str] = LLAMA_ATTENTION,
) -> LoraSettings:
    """LoRA settings for the encoder's `lora` config value (adapters on every layer)."""
    return configure_lora_v2(r=r, alpha=alpha, dropout=dropout, target_modules=target_modules)


@registry.misc("spacy-lsllama.LoRA.v2")
def configure_lora_v2(
    r: int = 12,
    alpha: int = 32,
    dropout: float = 0.1,
    target_modules: list[str] = LLAMA_ATTENTION,
    layers: str = "all",
) -> LoraSettings:
    """LoRA.v3 with peft's own dropout: a mask of its own for every adapter."""
    return configure_lora_v3(r, alpha, dropout, target_modules, layers, shared_dropout=False)


@registry.misc("spacy-lsllama.LoRA.v3")
def configure_lora_v3(
    r: int = 12,
    alpha: int = 32,
    dropout: float = 0.1,
    target_modules: list[str] = LLAMA_ATTENTION,
    layers: str = "all",
    shared_dropout: bool = True,
) -> LoraSettings:
    """LoRA settings for the encoder's `lora` config value.

    target_modules: the projections that get adapters; add "gate_proj", "up_proj" and
        "down_proj" for LoRA on every linear layer (the QLoRA recommendation).
    layers: the decoder layers that carry adapters ("all", "top K", "A:B", ...); the
        layers below them stay frozen, and the frozen-prefix cache skips them in training.
    shared_dropout: projections that read the same input (q/k/v, gate/up) share one
        dropout mask, drawn cheaply on CPU (`nn.dropout`); false: peft's dropout, one
        mask per adapter.
    """
    if r < 1:
        raise ValueError(f"LoRA rank must be at least 1, got {r}")
    if not target_modules:
        raise ValueError("LoRA needs at least one target module")
    return LoraSettings(
        r=r,
        alpha=alpha,
        dropout=dropout,
        target_modules=list(target_modules),
        layers=layers,
        shared_dropout=shared_dropout,
    )


@registry.architectures("spacy-lsllama.TokenClassifier.v1")
def build_token_classifier_v1(
    tok2vec: Model[list[Doc], list[Floats2d]], dropout: float = 0.1, nO: int | None = None
) -> Model[list[Doc], list[Floats2d]]:
    """Tag probabilities for every token: dropout and a linear softmax head over token vectors.

    tok2vec: token vectors, usually `spacy-transformers.TransformerListener.v1` reading the
        shared encoder. nO: the number of tags, set from the labels at initialize.
    The head starts from random (glorot) weights rather than spaCy's usual zeros, so the
    encoder's LoRA adapters get a gradient from the first step.
    """
    output = Softmax_v2(nO=nO, init_W=glorot_uniform_init, normalize_outputs=True)
    dropout_layer: Model[Floats2d, Floats2d] = Dropout(dropout)
    head: Model[Floats2d, Floats2d] = chain(dropout_layer, output)
    model: Model[list[Doc], list[Floats2d]] = chain(tok2vec, with_array(head))
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", head.layers[-1])
    return model


# --- Sequence classification (text classification) architectures below this line. ---


@registry.architectures("spacy-lsllama.PieceListener.v1")
def build_piece_listener_v1(upstream: str = "*") -> Model[list[Doc], list[TransformerData]]:
    """The shared encoder's per-doc piece states, unpooled: input for sequence pooling.

    upstream: the encoder component's name, or "*" for the pipeline's only one.
    """
    return TransformerListener(upstream_name=upstream)


@registry.architectures("spacy-lsllama.LabelSupervisedClassifier.v1")
def build_label_supervised_classifier_v1(
    tok2vec: Model[list[Doc], list[TransformerData]],
    pooling: str = "max",
    dropout: float = 0.1,
    exclusive_classes: bool = True,
    nO: int | None = None,
) -> Model[list[Doc], Floats2d]:
    """Label-supervised classification head: pool the pieces, dropout, project to the labels.

    The model of spaCy's `textcat` (exclusive classes: softmax) and `textcat_multilabel`
    (sigmoid). Either way the gradient spaCy sends, scores minus truths, is applied to the
    logits, which trains with (binary) cross-entropy as in the paper.

    tok2vec: the encoder's piece states, e.g. `spacy-lsllama.PieceListener.v1`.
    pooling: "max" (best unmasked), "last" (best causal), "mean" or "first".
    dropout: on the pooled vector; `spacy train` sets it from `[training] dropout`.
    nO: the number of labels; null infers it from the labels at initialize.
    """
    fill_defaults = {"W": 0, "b": NEG_VALUE if exclusive_classes else 0}
    output_layer = (
        Softmax_v2(nO=nO, init_W=glorot_uniform_init) if exclusive_classes else Linear(nO=nO)
    )
    resizable_layer: Model[Floats2d, Floats2d] = resizable(
        output_layer, resize_layer=partial(resize_linear_weighted, fill_defaults=fill_defaults)
    )
    head = resizable_layer if exclusive_classes else chain(resizable_layer, _sigmoid_on_logits())
    model: Model[list[Doc], Floats2d] = chain(tok2vec, pieces2vec(pooling), Dropout(dropout), head)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs["resize_output"] = partial(resize_and_set_ref, resizable_layer=resizable_layer)
    if nO is not None:
        model.set_dim("nO", nO)
    model.init = _init_classifier
    return model


def _sigmoid_on_logits() -> Model[Floats2d, Floats2d]:
    """Sigmoid scores whose gradient reaches the logits as is.

    spaCy's gradient, scores minus truths, is then binary cross-entropy's; thinc's `Logistic`
    would train squared error, whose gradient vanishes on confident mistakes.
    """
    return Model("sigmoid_on_logits", _sigmoid_on_logits_forward)


def _sigmoid_on_logits_forward(
    model: Model[Floats2d, Floats2d], X: Floats2d, is_train: bool
) -> tuple[Floats2d, Callable[[Floats2d], Floats2d]]:
    return model.ops.sigmoid(X, inplace=False), lambda dY: dY


def _init_classifier(
    model: Model[list[Doc], Floats2d], X: list[Doc] | None = None, Y: Floats2d | None = None
) -> Model[list[Doc], Floats2d]:
    if X is not None and Y is not None:
        _check_targets(X, Y)
    init_chain(model, X, Y)
    return model


def _check_targets(docs: list[Doc], Y: Floats2d) -> None:
    """Refuse to train on targets that carry no label: the data and labels must meet."""
    if not any(doc.cats for doc in docs):
        raise ValueError(
            f"None of the {len(docs)} examples used to initialize the text classifier has "
            "doc.cats: there is nothing to learn. Check that the training corpus holds "
            "category annotations (doc.cats)."
        )
    found = sorted({label for doc in docs for label, value in doc.cats.items() if value})
    if found and not Y.any():
        raise ValueError(
            f"None of the text classifier's labels is positive in the {len(docs)} examples "
            f"used to initialize it, whose categories are {found}. Check the labels given in "
            "[initialize.components.<name>.labels] against the training corpus."
        )
