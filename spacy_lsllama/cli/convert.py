"""``lsllama convert``: benchmark sets and corpus files to spaCy's `.spacy` format."""

from pathlib import Path
from typing import Annotated

import typer

from ..corpora import DATASETS, FORMATS, ConversionError, convert_dataset, convert_file


def convert(
    source: Annotated[
        str,
        typer.Argument(help=f"A dataset name ({', '.join(DATASETS)}) or an input file."),
    ],
    output: Annotated[
        Path, typer.Argument(help="Output directory (dataset) or .spacy file (single file).")
    ],
    data_dir: Annotated[
        Path, typer.Option(help="Folder holding the dataset folders, e.g. ../shared/datasets.")
    ] = Path("assets"),
    format: Annotated[
        str | None, typer.Option(help=f"Format of an input file: {', '.join(FORMATS)}.")
    ] = None,
    lang: Annotated[str, typer.Option(help="Language of the blank tokenizer.")] = "en",
) -> None:
    """Convert a named benchmark set (train/dev/test) or one file into `.spacy` DocBins.

    Malformed input stops the conversion with the file, line and field at fault; nothing is
    written for a dataset until every split has been read.

    Examples:

        lsllama convert conll2003 corpus/conll2003 --data-dir ../shared/datasets

        lsllama convert reviews.jsonl corpus/reviews.spacy --format jsonl-textcat
    """
    try:
        if source in DATASETS:
            for split, path in convert_dataset(source, data_dir, output).items():
                typer.echo(f"{split}: {path}")
            return
        if format is None:
            raise ValueError(f"'{source}' is not a dataset name: give --format for a file.")
        counts = convert_file(source, output, format=format, lang=lang)
    except (ConversionError, ValueError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{output}: {counts.docs} docs, {counts.tokens} tokens, labels {counts.labels}")
