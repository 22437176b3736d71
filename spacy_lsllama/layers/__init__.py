"""Thinc layers over the PyTorch encoder (`nn`): docs in, spacy-transformers' batches out."""

from .transformer_model import LAYER_NAME, LlamaTransformerModel, get_encoder, set_encoder

__all__ = ["LAYER_NAME", "LlamaTransformerModel", "get_encoder", "set_encoder"]
