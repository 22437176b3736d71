"""Thinc layers and the PyTorch modules they wrap."""

from .encoder import EncoderSettings, LlamaEncoder, build_encoder
from .transformer_model import LlamaTransformerModel, get_encoder, set_encoder

__all__ = [
    "EncoderSettings",
    "LlamaEncoder",
    "LlamaTransformerModel",
    "build_encoder",
    "get_encoder",
    "set_encoder",
]
