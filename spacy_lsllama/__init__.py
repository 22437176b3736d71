"""spacy-lsllama: label-supervised Llama encoders (LS-LLaMA, LS-unLLaMA) for spaCy."""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata only when asked for: importing the
    package stays instant, which keeps the command line's start-up short."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spacy-lsllama")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"
