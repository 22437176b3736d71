"""The pipeline `lsllama tag` and `lsllama evaluate` run when none is named: the shipped one."""

import importlib.util

import typer

DEFAULT_PIPELINE = "en_lsllama_ner"
MODEL_ENV = "LSLLAMA_MODEL"
INSTALL_HINT = "bash scripts/install.sh in a clone of spacy-lsllama installs it"


def chosen_pipeline(model: str | None) -> str:
    """`model` when one is named (--model or $LSLLAMA_MODEL); else the shipped pipeline,
    said on stderr so a log shows which model tagged the data."""
    if model:
        return model
    if importlib.util.find_spec(DEFAULT_PIPELINE) is None:
        typer.echo(
            f"error: no pipeline given and the shipped pipeline {DEFAULT_PIPELINE} is not "
            f"installed ({INSTALL_HINT}); or name one with --model or ${MODEL_ENV}.",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(
        f"Using the shipped pipeline {DEFAULT_PIPELINE} (--model or ${MODEL_ENV} names another).",
        err=True,
    )
    return DEFAULT_PIPELINE
