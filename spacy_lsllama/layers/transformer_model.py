"""The thinc layer: spaCy docs in, spacy-transformers' FullTransformerBatch out.

Producing spacy-transformers' own data classes means its `TransformerListener`, the
pooling over aligned pieces and every spaCy component that takes a `tok2vec` (ner, textcat,
tagger, spancat) work on top of this encoder unchanged.
"""

from collections.abc import Callable

import torch
from spacy.tokens import Doc
from spacy_transformers.data_classes import FullTransformerBatch, WordpieceBatch
from thinc.api import Model, NumpyOps, PyTorchShim, get_torch_default_device
from thinc.types import ArgsKwargs
from transformers.modeling_outputs import BaseModelOutput

from ..nn.encoder import EncoderSettings, LlamaEncoder, build_encoder
from ..nn.precision import place, weights_dtype
from .alignment import PieceBatch, batch_pieces, encode_docs
from .shim import is_placeholder, make_shim

LAYER_NAME = "lsllama_transformer"


def LlamaTransformerModel(settings: EncoderSettings) -> Model[list[Doc], FullTransformerBatch]:
    """Wrap a (not yet loaded) Llama encoder; weights arrive at initialize or from disk."""
    return Model(LAYER_NAME, forward, init=init, dims={"nO": None}, shims=[make_shim(settings)])


def _shim(model: Model) -> PyTorchShim:
    shim = model.shims[0]
    assert isinstance(shim, PyTorchShim), f"{model.name}: not a PyTorch shim"
    return shim


def get_settings(model: Model) -> EncoderSettings:
    """The encoder's settings: their one owner is the encoder (or its placeholder)."""
    return model.shims[0]._model.settings


def get_encoder(model: Model) -> LlamaEncoder:
    """The loaded encoder, or a clear error when the model was never initialized."""
    encoder = model.shims[0]._model
    if is_placeholder(encoder):
        raise ValueError(
            "The Llama encoder has no weights yet: call nlp.initialize() to load the base "
            "model, or load a trained pipeline with spacy.load()."
        )
    return encoder


def set_encoder(model: Model, encoder: LlamaEncoder) -> None:
    """Install an encoder in the model's shim as it is, on thinc's current device."""
    model.shims[0]._model = encoder.to(get_torch_default_device())
    model.set_dim("nO", encoder.hidden_size, force=True)


def place_encoder(model: Model, encoder: LlamaEncoder) -> None:
    """Install a newly built or loaded encoder on thinc's current device, in the dtype its
    `dtype` setting runs in there."""
    device = get_torch_default_device()
    set_encoder(model, place(encoder, device, encoder.settings.dtype))


def encoder_dtype(model: Model) -> torch.dtype:
    """The dtype the encoder's frozen weights run in (its LoRA adapters stay float32)."""
    return weights_dtype(get_encoder(model))


def init(model: Model, X: list[Doc] | None = None, Y: None = None) -> Model:
    if is_placeholder(model.shims[0]._model):
        place_encoder(model, build_encoder(get_settings(model)))
    return model


def forward(model: Model, docs: list[Doc], is_train: bool) -> tuple[FullTransformerBatch, Callable]:
    encoder = get_encoder(model)
    settings = encoder.settings
    encoder.set_lora_merged(settings.merge_lora and not is_train)
    nonempty = [doc for doc in docs if len(doc)]
    if not nonempty:
        return FullTransformerBatch.empty(len(docs)), lambda d_batch: []
    batch = batch_pieces(
        encode_docs(encoder.tokenizer, nonempty),
        window=settings.window,
        stride=settings.stride,
        pad_id=encoder.tokenizer.pad_token_id,
        causal=not encoder.unmasked,  # no layer attends both ways: only the left context
    )
    device = _shim(model).device
    inputs = ArgsKwargs(
        args=tuple(
            torch.as_tensor(array, device=device)
            for array in (batch.window_ids, batch.window_mask, batch.gather, batch.keep)
        ),
        kwargs={},
    )
    states, backprop_states = model.shims[0](inputs, is_train)
    output = FullTransformerBatch(
        spans=[[doc[:]] if len(doc) else [] for doc in docs],
        wordpieces=_wordpieces(batch, encoder.tokenizer.pad_token_id),
        model_output=BaseModelOutput(last_hidden_state=states),
        align=batch.align,
    )

    def backprop(d_output: FullTransformerBatch) -> list[Doc]:
        if not states.requires_grad:
            # a frozen encoder (`lora = null`): nothing in it trains, only the heads do
            return []
        d_states = d_output.model_output["output_0"].to(states.device)
        backprop_states(ArgsKwargs(args=(states,), kwargs={"grad_tensors": (d_states,)}))
        return []

    return output, backprop


def _wordpieces(batch: PieceBatch, pad_id: int) -> WordpieceBatch:
    """Per-doc (stitched) pieces in spacy-transformers' format, one row per non-empty doc."""
    ids = batch.keep.astype("int64") * 0 + pad_id
    for row, doc in enumerate(batch.docs):
        ids[row, : len(doc.ids)] = doc.ids
    ops = NumpyOps()
    return WordpieceBatch(
        strings=[doc.strings for doc in batch.docs],
        input_ids=ops.asarray2i(ids, dtype="int64"),
        attention_mask=ops.asarray2f(batch.keep.copy()),
        lengths=batch.lengths,
        token_type_ids=None,
    )
