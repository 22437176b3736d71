"""Thinc layers and the PyTorch modules they wrap."""

from .encoder import EncoderSettings, LlamaEncoder, build_encoder

__all__ = ["EncoderSettings", "LlamaEncoder", "build_encoder"]
