"""``lsllama resume``: continue a stopped `spacy train` run to the end of its step budget."""

from pathlib import Path
from typing import Annotated

import typer

from ..training.resume import ResumeError
from ..training.resume import resume as resume_run


def resume(
    output: Annotated[Path, typer.Argument(help="The `--output` directory of the run.")],
    gpu_id: Annotated[int, typer.Option(help="GPU to use; -1 for CPU.")] = -1,
    warmup_steps: Annotated[
        int,
        typer.Option(
            min=0,
            help="Ramp the learning rate up over this many steps: the optimizer's moments "
            "start afresh.",
        ),
    ] = 20,
) -> None:
    """Continue a stopped `spacy train` run from its last save, in the same directory.

    `spacy train` saves `model-last` at every evaluation and when it stops; the shipped
    configs record in it how many updates it holds. This trains on from there, with the
    learning-rate schedule where the run left it, to the end of `training.max_steps`;
    `model-best` stays the best pipeline of the whole run. Run it from the directory the
    training started in (the config's paths are read from there); a run already finished
    is left as it is.

    Example:

        lsllama resume training/ner
    """
    try:
        state = resume_run(output, use_gpu=gpu_id, warmup_steps=warmup_steps)
    except ResumeError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{output}: finished at step {state.total_steps:,}, the budget ({state.progress.steps:,} "
        f"updates: spaCy counts from step 0), in {state.progress.seconds / 60:.1f} min of "
        "training; model-best and model-last are final"
    )
