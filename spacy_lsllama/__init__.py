"""spacy-lsllama: label-supervised Llama encoders (LS-LLaMA, LS-unLLaMA) for spaCy."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spacy-lsllama")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
