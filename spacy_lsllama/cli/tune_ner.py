"""``lsllama tune-ner``: choose an `lsllama_ner` component's `outside_penalty` on dev data.

A trained tagger that finds few entities (high precision, low recall, as on WNUT-17) gains F1
when the outside tag O is made less likely before decoding. The encoder runs once over the
data; each penalty only decodes the kept tag probabilities again, so a grid costs one pass.
"""

import json
import math
from pathlib import Path
from typing import Annotated

import spacy
import typer
from rich.console import Console
from rich.table import Table
from spacy.language import Language
from spacy.training import Corpus, Example

from ..pipeline.loading import EncoderDtype, load_pipeline
from ..pipeline.ner import LabelSupervisedNER
from .evaluate import predict

DEFAULT_PENALTIES = "-0.5,0,0.5,1,1.5,2,3"


def tune_ner(
    model: Annotated[str, typer.Argument(help="Pipeline package name or path.")],
    data: Annotated[Path, typer.Argument(help="Gold `.spacy` file: dev data, never test.")],
    penalties: Annotated[
        str, typer.Option(help="Comma-separated outside_penalty values to try.")
    ] = DEFAULT_PENALTIES,
    component: Annotated[
        str | None, typer.Option(help="The `lsllama_ner` component; needed if there are two.")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write the scores as JSON here.")] = None,
    batch_size: Annotated[int, typer.Option(help="Documents per batch.")] = 64,
    gpu_id: Annotated[int, typer.Option(help="GPU to use; -1 for CPU.")] = -1,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    dtype: Annotated[
        EncoderDtype, typer.Option(help="What the encoder runs in, as for `lsllama evaluate`.")
    ] = EncoderDtype.auto,
) -> None:
    """Score an NER component under each `outside_penalty` and name the best on this data.

    The penalty is subtracted from the log-probability of the outside tag O before decoding:
    above 0 the component finds more entities. Choose it on dev data, then score test once
    with it (`lsllama evaluate MODEL test.spacy --components.ner.outside_penalty 1`) and set it
    under `[components.ner]` in the pipeline's config.cfg to keep it.

    Example:

        lsllama tune-ner training/ner/model-best corpus/wnut17/dev.spacy --penalties 0,0.5,1,2
    """
    grid = parse_penalties(penalties)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        nlp = load_pipeline(model, dtype=dtype)
        name, ner = ner_component(nlp, component)
        examples = list(Corpus(data)(nlp))
    except (OSError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    predict(nlp, examples, batch_size=batch_size, progress=progress)
    scores = score_penalties(ner, examples, grid)
    f_key = score_keys(ner)[2]
    # the best F1; among equals, the penalty closest to 0, the model as trained
    best = max(scores, key=lambda row: (row[f_key], -abs(row["outside_penalty"])))
    print_table(scores, best, name, score_keys(ner))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({"component": name, "best": best, "scores": scores}, indent=2))


def parse_penalties(text: str) -> list[float]:
    """The grid from "0,0.5,1"; a clear error for anything but finite numbers."""
    try:
        grid = [float(value) for value in text.split(",") if value.strip()]
    except ValueError:
        grid = []
    if not grid or not all(math.isfinite(value) for value in grid):
        typer.echo(f"error: --penalties: expected comma-separated numbers, got {text!r}", err=True)
        raise typer.Exit(2)
    return grid


def ner_component(nlp: Language, name: str | None) -> tuple[str, LabelSupervisedNER]:
    """The pipeline's `lsllama_ner` component and its name: `name`, or its only one."""
    found = {n: pipe for n, pipe in nlp.pipeline if isinstance(pipe, LabelSupervisedNER)}
    listed = ", ".join(found) or "none"
    if name is not None and name not in found:
        raise ValueError(f"--component {name}: not an lsllama_ner component (those: {listed})")
    if name is None and len(found) != 1:
        raise ValueError(f"choose the lsllama_ner component with --component (found: {listed})")
    name = name or next(iter(found))
    return name, found[name]


def score_keys(ner: LabelSupervisedNER) -> tuple[str, str, str]:
    """The component's P, R and F score names: `ents_*`, or `spans_KEY_*` with `spans_key`."""
    prefix = f"spans_{ner.spans_key}" if ner.spans_key else "ents"
    return f"{prefix}_p", f"{prefix}_r", f"{prefix}_f"


def score_penalties(
    ner: LabelSupervisedNER, examples: list[Example], grid: list[float]
) -> list[dict[str, float]]:
    """Entity P/R/F of the already annotated examples, decoded again under each penalty,
    under the component's own score names (`score_keys`; 0 where nothing is scored)."""
    keys = score_keys(ner)
    docs = [eg.predicted for eg in examples]
    probs = ner.predict(docs)
    kept = ner.outside_penalty
    rows = []
    try:
        for penalty in grid:
            ner.outside_penalty = penalty
            ner.set_annotations(docs, probs)
            scores = ner.score(examples)
            rows.append({"outside_penalty": penalty, **{k: scores[k] or 0.0 for k in keys}})
    finally:
        ner.outside_penalty = kept
    return rows


def print_table(
    rows: list[dict[str, float]], best: dict[str, float], name: str, keys: tuple[str, str, str]
) -> None:
    """The grid as a Rich table, with the best row marked and how to use it."""
    table = Table(title=f"{name}: entity scores by outside_penalty")
    for column in ("outside_penalty", "P", "R", "F", ""):
        table.add_column(column, justify="right")
    for row in rows:
        mark = "best" if row is best else ""
        table.add_row(f"{row['outside_penalty']:g}", *(f"{100 * row[k]:.2f}" for k in keys), mark)
    console = Console()
    console.print(table)
    console.print(
        f"best: outside_penalty = {best['outside_penalty']:g} (F1 {100 * best[keys[2]]:.2f}); "
        f"score test with --components.{name}.outside_penalty {best['outside_penalty']:g}",
        soft_wrap=True,  # one line, so the option can be copied from a log
    )
