"""The input formats of `lsllama convert FILE OUT --format NAME`, and converting one source.

Like spaCy's `CONVERTERS`, `FORMATS` names one reader per format. Every reader takes the
source, a blank pipeline (for its vocab and tokenizer), a `CorpusCounts` that collects what
was read and skipped, and the reader's own options.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .conll import read_conll
from .delimited import read_csv_textcat
from .docbin import write_docbin
from .hf import read_hf_dataset
from .jsonl import read_jsonl_ner, read_jsonl_textcat
from .sst import read_sst_trees, read_stsa
from .summary import CorpusCounts

FormatReader = Callable[..., Iterable[Doc]]


def _conll(path: Path, nlp: Language, counts: CorpusCounts, **opts: Any) -> Iterable[Doc]:
    return read_conll(path, vocab=nlp.vocab, counts=counts, **opts)


def _wnut(path: Path, nlp: Language, counts: CorpusCounts, **opts: Any) -> Iterable[Doc]:
    return read_conll(path, vocab=nlp.vocab, counts=counts, **{"scheme": "iob2", **opts})


def _jsonl_ner(path: Path, nlp: Language, counts: CorpusCounts, **opts: Any) -> Iterable[Doc]:
    return read_jsonl_ner(path, nlp=nlp, counts=counts, **opts)


def _jsonl_textcat(path: Path, nlp: Language, _: CorpusCounts, **opts: Any) -> Iterable[Doc]:
    return read_jsonl_textcat(path, nlp=nlp, **opts)


def _csv_textcat(path: Path, nlp: Language, _: CorpusCounts, **opts: Any) -> Iterable[Doc]:
    return read_csv_textcat(path, nlp=nlp, **opts)


def _tsv_textcat(path: Path, nlp: Language, _: CorpusCounts, **opts: Any) -> Iterable[Doc]:
    return read_csv_textcat(path, nlp=nlp, delimiter="\t", **opts)


def _sst_trees(path: Path, nlp: Language, _: CorpusCounts, **opts: Any) -> Iterable[Doc]:
    return read_sst_trees(path, vocab=nlp.vocab, **opts)


def _stsa(path: Path, nlp: Language, _: CorpusCounts, **opts: Any) -> Iterable[Doc]:
    return read_stsa(path, vocab=nlp.vocab, **opts)


def _hf(source: Path, nlp: Language, counts: CorpusCounts, **opts: Any) -> Iterable[Doc]:
    return read_hf_dataset(source, nlp=nlp, counts=counts, **opts)


FORMATS: dict[str, FormatReader] = {
    "conll": _conll,
    "wnut": _wnut,
    "jsonl-ner": _jsonl_ner,
    "jsonl-textcat": _jsonl_textcat,
    "csv-textcat": _csv_textcat,
    "tsv-textcat": _tsv_textcat,
    "sst-trees": _sst_trees,
    "stsa": _stsa,
    "hf": _hf,
}


def convert_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    format: str,
    lang: str = "en",
    **options: Any,
) -> CorpusCounts:
    """Convert one source of a FORMATS format into a .spacy DocBin and count what was read.

    `lang` picks the blank pipeline whose vocab and tokenizer build the docs; `options` go to
    the format's reader (e.g. scheme="iob1" for "conll", text_field="sentence" for csv).
    The output is written only once the whole input has been read, and never over the input.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    source, output = Path(input_path), Path(output_path)
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise ValueError(f"{output}: the output would overwrite the input")
    counts = CorpusCounts()
    docs = FORMATS[format](source, spacy.blank(lang), counts, **options)
    return write_docbin(docs, output, counts=counts)
