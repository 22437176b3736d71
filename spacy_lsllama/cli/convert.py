"""``lsllama convert``: benchmark sets, corpus files and Hugging Face datasets to `.spacy` files."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ..corpora import DATASETS, FORMATS, ConversionError, convert_dataset, convert_file
from ..corpora.conll import DELIMITERS
from ..corpora.labels import parse_label_map
from ..corpora.schemes import FILE_SCHEMES

NER_FORMATS = ("conll", "wnut", "jsonl-ner", "hf")
TEXT_FORMATS = ("jsonl-ner", "jsonl-textcat", "csv-textcat", "tsv-textcat", "hf")
# Which reader options each command-line option applies to.
APPLIES_TO = {
    "scheme": ("conll", "wnut", "hf"),
    "token_column": ("conll", "wnut"),
    "tag_column": ("conll", "wnut"),
    "delimiter": ("conll", "wnut"),
    "comment": ("conll", "wnut"),
    "text_field": TEXT_FORMATS,
    "label_field": ("jsonl-textcat", "csv-textcat", "tsv-textcat", "hf"),
    "tags_field": ("hf",),
    "split": ("hf",),
    "label_map": NER_FORMATS + TEXT_FORMATS,
}


def convert(
    source: Annotated[
        str,
        typer.Argument(
            help=f"A dataset name ({', '.join(DATASETS)}), an input file, or (--format hf) "
            "a saved Hugging Face dataset, data file or hub name."
        ),
    ],
    output: Annotated[
        Path, typer.Argument(help="Output directory (dataset) or .spacy file (single source).")
    ],
    data_dir: Annotated[
        Path, typer.Option(help="Folder holding the dataset folders, e.g. ../shared/datasets.")
    ] = Path("assets"),
    format: Annotated[
        str | None, typer.Option(help=f"Format of an input: {', '.join(FORMATS)}.")
    ] = None,
    lang: Annotated[str, typer.Option(help="Language of the blank tokenizer.")] = "en",
    scheme: Annotated[
        str | None,
        typer.Option(help=f"Tag scheme: {', '.join(FILE_SCHEMES)} (auto: any, and detected)."),
    ] = None,
    token_column: Annotated[
        str | None, typer.Option(help="Token column: index (0 first, -1 last) or header name.")
    ] = None,
    tag_column: Annotated[
        str | None, typer.Option(help="Tag column: index or header name; default -1 (last).")
    ] = None,
    delimiter: Annotated[
        str | None, typer.Option(help=f"Column separator: {', '.join(DELIMITERS)}.")
    ] = None,
    comment: Annotated[
        str | None, typer.Option(help="Comment line prefix (default '#'); '' keeps every line.")
    ] = None,
    label_map: Annotated[
        list[str] | None,
        typer.Option(help="OLD=NEW (repeatable; empty NEW drops the label) or a JSON file."),
    ] = None,
    text_field: Annotated[str | None, typer.Option(help="Text field or column.")] = None,
    label_field: Annotated[str | None, typer.Option(help="Class label field or column.")] = None,
    tags_field: Annotated[
        str | None, typer.Option(help="Tag column of a dataset (default ner_tags, tags, labels).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split of a Hugging Face dataset.")] = None,
) -> None:
    """Convert a named benchmark set (train/dev/test) or one source into `.spacy` DocBins.

    Malformed input stops the conversion with the file, line and field at fault; nothing is
    written until the whole input has been read. Prints what was read: docs, tokens, entities
    per label, the tag scheme, and the comment lines skipped.

    Examples:

        lsllama convert conll2003 corpus/conll2003 --data-dir ../shared/datasets

        lsllama convert notes.conll corpus/notes.spacy --format conll --tag-column ner

        lsllama convert data/my_ner corpus/train.spacy --format hf --split train
    """
    given = {
        "scheme": scheme,
        "token_column": _column(token_column),
        "tag_column": _column(tag_column),
        "delimiter": delimiter,
        "comment": comment,
        "text_field": text_field,
        "label_field": label_field,
        "tags_field": tags_field,
        "split": split,
        "label_map": label_map,
    }
    options = {name: value for name, value in given.items() if value is not None}
    try:
        if source in DATASETS and format is None:
            _refuse_options(options, f"the dataset {source}")
            for name, path in convert_dataset(source, data_dir, output).items():
                typer.echo(f"{name}: {path}")
            return
        if format is None:
            raise ValueError(f"'{source}' is not a dataset name: give --format for a file.")
        options = _reader_options(format, options)
        counts = convert_file(source, output, format=format, lang=lang, **options)
    except (ConversionError, ValueError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{output}: " + "\n  ".join(counts.describe()))


def _column(value: str | None) -> int | str | None:
    """An index when the value is an integer (negative counts from the end), else a name."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def _reader_options(format: str, options: dict[str, Any]) -> dict[str, Any]:
    """Check each option applies to the format; parse the label map and comment setting."""
    for name in options:
        if format not in APPLIES_TO[name]:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} does not apply to --format {format}")
    if "label_map" in options:
        options["label_map"] = parse_label_map(options["label_map"])
    if options.get("comment") == "":
        options["comment"] = None
    return options


def _refuse_options(options: dict[str, Any], what: str) -> None:
    if options:
        flags = ", ".join("--" + name.replace("_", "-") for name in options)
        raise ValueError(f"{flags}: {what} has fixed reading options")
