"""The thinc layer: spaCy docs in, spacy-transformers' FullTransformerBatch out.

Producing spacy-transformers' own data classes means its `TransformerListener`, the
pooling over aligned pieces and every spaCy component that takes a `tok2vec` (ner, textcat,
tagger, spancat) work on top of this encoder unchanged.
"""

from collections.abc import Callable
from functools import partial

import torch
from spacy.tokens import Doc
from spacy_transformers.data_classes import FullTransformerBatch, WordpieceBatch
from thinc.api import Model, PyTorchShim, get_torch_default_device
from thinc.model import deserialize_attr, serialize_attr
from thinc.types import ArgsKwargs
from transformers.modeling_outputs import BaseModelOutput

from ..alignment import PieceBatch, batch_pieces, encode_docs
from ..serialization import encoder_from_bytes, encoder_to_bytes, is_placeholder
from .encoder import EncoderSettings, LlamaEncoder, build_encoder

LAYER_NAME = "lsllama_transformer"


def LlamaTransformerModel(settings: EncoderSettings) -> Model[list[Doc], FullTransformerBatch]:
    """Wrap a (not yet loaded) Llama encoder; weights arrive at initialize or from disk."""
    shim = PyTorchShim(
        torch.nn.Module(),
        serialize_model=encoder_to_bytes,
        deserialize_model=partial(_deserialize, settings=settings),
    )
    return Model(
        LAYER_NAME,
        forward,
        init=init,
        dims={"nO": None},
        attrs={"settings": settings},
        shims=[shim],
    )


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
    """Install a loaded encoder in the model's shim, on thinc's current device."""
    model.shims[0]._model = encoder.to(get_torch_default_device())
    model.set_dim("nO", encoder.hidden_size, force=True)


def init(model: Model, X: list[Doc] | None = None, Y: None = None) -> Model:
    if is_placeholder(model.shims[0]._model):
        set_encoder(model, build_encoder(model.attrs["settings"]))
    return model


def forward(model: Model, docs: list[Doc], is_train: bool) -> tuple[FullTransformerBatch, Callable]:
    encoder = get_encoder(model)
    settings: EncoderSettings = model.attrs["settings"]
    encoder.set_lora_merged(encoder.settings.merge_lora and not is_train)
    nonempty = [doc for doc in docs if len(doc)]
    if not nonempty:
        return FullTransformerBatch.empty(len(docs)), lambda d_batch: []
    batch = batch_pieces(
        encode_docs(encoder.tokenizer, nonempty),
        window=settings.window,
        stride=settings.stride,
        pad_id=encoder.tokenizer.pad_token_id,
    )
    device = model.shims[0].device
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
        d_states = d_output.model_output["output_0"].to(states.device)
        backprop_states(ArgsKwargs(args=(states,), kwargs={"grad_tensors": (d_states,)}))
        return []

    return output, backprop


def _wordpieces(batch: PieceBatch, pad_id: int) -> WordpieceBatch:
    """Per-doc (stitched) pieces in spacy-transformers' format, one row per non-empty doc."""
    ids = batch.keep.astype("int64") * 0 + pad_id
    for row, doc in enumerate(batch.docs):
        ids[row, : len(doc.ids)] = doc.ids
    return WordpieceBatch(
        strings=[doc.strings for doc in batch.docs],
        input_ids=ids,
        attention_mask=batch.keep.copy(),
        lengths=batch.lengths,
        token_type_ids=None,
    )


def _deserialize(
    placeholder: torch.nn.Module, data: bytes, device: torch.device, *, settings: EncoderSettings
) -> LlamaEncoder:
    return encoder_from_bytes(data, settings).to(device)


@serialize_attr.register(EncoderSettings)
def _serialize_settings(
    _: EncoderSettings, value: EncoderSettings, name: str, model: Model
) -> bytes:
    """Settings come from the config; nothing of them needs to travel in the bytes."""
    return b""


@deserialize_attr.register(EncoderSettings)
def _deserialize_settings(
    current: EncoderSettings, data: bytes, name: str, model: Model
) -> EncoderSettings:
    return current
