"""``lsllama evaluate``: a pipeline's own scores on gold data, as `spacy benchmark accuracy`."""

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import click
import spacy
import torch
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from spacy.cli._util import parse_config_overrides
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import DocBin
from spacy.training import Corpus, Example
from thinc.api import ConfigValidationError

from ..pipeline.loading import EncoderDtype, load_pipeline
from ..pipeline.transformer import encoder_dtypes
from ..training.document_corpus import documents as group_documents
from ..training.document_corpus import join_sentences
from .defaults import DEFAULT_PIPELINE, MODEL_ENV, chosen_pipeline


def evaluate(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="[MODEL]",
            help=f"Pipeline package name or path (default: ${MODEL_ENV}, else the shipped "
            f"pipeline {DEFAULT_PIPELINE}).",
        ),
    ],
    data: Annotated[
        Path | None, typer.Argument(metavar="DATA", show_default=False, help="Gold `.spacy` file.")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write the scores as JSON here.")] = None,
    batch_size: Annotated[int, typer.Option(help="Documents per batch.")] = 64,
    gpu_id: Annotated[int, typer.Option(help="GPU to use; -1 for CPU.")] = -1,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    documents: Annotated[
        bool,
        typer.Option(
            help="Score whole documents: the consecutive sentences of each document (as "
            "`lsllama convert` numbers them for files that mark documents) joined into one "
            "text, as users tag articles."
        ),
    ] = False,
    dtype: Annotated[
        EncoderDtype,
        typer.Option(
            help="What the encoder runs in: auto (the pipeline's setting: bfloat16 on a GPU "
            "or a CPU with AMX or AVX-512 BF16), or the dtype of training to reproduce its "
            "dev scores."
        ),
    ] = EncoderDtype.auto,
) -> None:
    """Score a pipeline on gold data with its components' own scorers, with words per second.

    The scores are those of `spacy train` and `spacy benchmark accuracy`: seqeval entity
    scores (conlleval rules) for `lsllama_ner`, and each text classifier's scorer at the
    component's own `threshold`. On a host where `auto` predicts in bfloat16, `--dtype
    float32` gives the dev scores `spacy train` logged; the scores record the dtype used.
    Further `--section.key value` options override the pipeline's config, as in `spacy
    train` (e.g. `--components.ner.decoding greedy`).

    With one argument, it is the data, and the pipeline is $LSLLAMA_MODEL or the shipped
    en_lsllama_ner.

    Example:

        lsllama evaluate corpus/conll2003/test.spacy
        lsllama evaluate training/ner/model-best corpus/conll2003/test.spacy --output m.json
    """
    if data is None:
        model, data = chosen_pipeline(os.environ.get(MODEL_ENV)), Path(model)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        overrides = parse_config_overrides(ctx.args)
    except click.UsageError as err:  # spaCy's parser raises the click it depends on
        typer.echo(f"error: {err.format_message()}", err=True)
        raise typer.Exit(2) from None
    try:
        nlp = load_pipeline(model, dtype=dtype, overrides=overrides)
        examples = read_examples(nlp, data, documents=documents)
    except ConfigValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, error.get('loc', [])))}: {error.get('msg')}"
            for error in err.errors
        )
        typer.echo(f"error: {model}: {err.title}: {problems}", err=True)
        raise typer.Exit(1) from None
    except (OSError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    seconds = predict(nlp, examples, batch_size=batch_size, progress=progress)
    scores = Scorer(nlp).score(examples)
    scores["words_per_second"] = sum(len(eg.predicted) for eg in examples) / max(seconds, 1e-9)
    scores["encoder_dtypes"] = encoder_dtypes(nlp)
    scores["texts"] = "documents" if documents else "as stored"
    scores["threads"] = torch.get_num_threads()
    scores["docs"] = len(examples)
    print_scores(scores)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(scores, indent=2))


def read_examples(nlp: Language, data: Path, *, documents: bool) -> list[Example]:
    """The gold examples of `data`, one per doc, or one per document with `documents`."""
    if not documents:
        return list(Corpus(data)(nlp))
    if not data.is_file():
        raise OSError(f"gold data not found: {data}")
    sentences = list(DocBin().from_disk(data).get_docs(nlp.vocab))
    joined = [join_sentences(group) for group in group_documents(sentences)]
    return [Example(nlp.make_doc(doc.text), doc) for doc in joined]


def predict(nlp: Language, examples: list[Example], *, batch_size: int, progress: bool) -> float:
    """Annotate each example's predicted doc in place (as `nlp.evaluate`); return the seconds."""
    start = time.perf_counter()
    docs = nlp.pipe((eg.predicted for eg in examples), batch_size=batch_size)
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("Annotating", total=len(examples))
        for eg, doc in zip(examples, docs):
            eg.predicted = doc
            bar.advance(task)
    return time.perf_counter() - start


def print_scores(scores: dict[str, Any]) -> None:
    """Rich tables of the per-label scores and the overall scores on standard output."""
    console = Console()
    for key, per_label in scores.items():
        if not key.endswith("_per_type") or not per_label:
            continue
        rows = {
            label: row if isinstance(row, dict) else {"score": row}
            for label, row in per_label.items()
        }
        columns = list(next(iter(rows.values())))
        table = Table(title=key)
        for column in ["label", *columns]:
            table.add_column(column, justify="left" if column == "label" else "right")
        for label, row in sorted(rows.items()):
            table.add_row(label, *(_shown(column, row[column]) for column in columns))
        console.print(table)
    for key, value in scores.items():
        if isinstance(value, float):
            console.print(f"{key}: {_shown(key, value)}")
    if dtypes := scores.get("encoder_dtypes"):
        console.print(f"encoder dtype: {', '.join(dtypes)}")


def _shown(key: str, value: Any) -> str:
    if key in ("words_per_second", "speed"):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{100 * value:.2f}"
    return str(value)
