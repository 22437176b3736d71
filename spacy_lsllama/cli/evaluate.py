"""``lsllama evaluate``: seqeval entity scores or classification scores for a pipeline."""

import json
import time
from pathlib import Path
from typing import Annotated, Any

import spacy
import typer
from rich.console import Console
from rich.table import Table
from spacy.tokens import DocBin
from spacy.training import Example

from ..pipeline.scorers import ner_scores, textcat_scores


def evaluate(
    model: Annotated[str, typer.Argument(help="Pipeline package name or path.")],
    data: Annotated[Path, typer.Argument(help="Gold `.spacy` file.")],
    output: Annotated[Path | None, typer.Option(help="Write the scores as JSON here.")] = None,
    batch_size: Annotated[int, typer.Option(help="Documents per batch.")] = 64,
    gpu_id: Annotated[int, typer.Option(help="GPU to use; -1 for CPU.")] = -1,
) -> None:
    """Score a pipeline on gold data, with words per second.

    Entity-level seqeval scores (conlleval-compatible) for NER; accuracy and macro-F1 for
    classification.

    Example:

        lsllama evaluate training/ner/model-best corpus/conll2003/test.spacy --output m.json
    """
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        nlp = spacy.load(model)
        references = list(DocBin().from_disk(data).get_docs(nlp.vocab))
    except (OSError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    start = time.perf_counter()
    predicted = nlp.pipe((nlp.make_doc(doc.text) for doc in references), batch_size=batch_size)
    examples = [Example(pred, ref) for pred, ref in zip(predicted, references)]
    seconds = time.perf_counter() - start
    scores = score(examples)
    scores["words_per_second"] = sum(len(doc) for doc in references) / seconds
    print_scores(scores)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(scores, indent=2))


def score(examples: list[Example]) -> dict[str, Any]:
    """Entity scores when the gold data has entities, classification scores otherwise."""
    if any(eg.reference.ents for eg in examples):
        result = ner_scores(examples)
        return {
            "ents_p": result["precision"],
            "ents_r": result["recall"],
            "ents_f": result["f1"],
            "per_type": result["per_type"],
        }
    multilabel = any(sum(eg.reference.cats.values()) > 1 for eg in examples)
    return textcat_scores(examples, multilabel=multilabel)


def print_scores(scores: dict[str, Any]) -> None:
    """A Rich table of the overall and per-label scores on standard output."""
    console = Console()
    per_label = scores.get("per_type") or scores.get("per_label") or {}
    table = Table(title="Scores", show_lines=False)
    for column in ("label", "P", "R", "F", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, row in sorted(per_label.items()):
        table.add_row(
            label,
            *(f"{100 * row[key]:.2f}" for key in ("p", "r", "f")),
            str(row.get("support", "")),
        )
    console.print(table)
    for key, value in scores.items():
        if isinstance(value, float):
            shown = f"{value:,.0f}" if key == "words_per_second" else f"{100 * value:.2f}"
            console.print(f"{key}: {shown}")
