"""Convert benchmark corpora into spaCy DocBins for NER and text classification.

NER readers yield one `Doc` per sentence with `doc.ents` set from the tags; text-classification
readers yield one `Doc` per text with one-hot `doc.cats` over every label of the set. Malformed
input raises `ConversionError`, which names the file and the 1-based line, so a broken corpus is
fixed at the source instead of silently training on a shifted or truncated copy.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

SST2_LABELS = ("negative", "positive")
SST5_LABELS = ("very negative", "negative", "neutral", "positive", "very positive")
TWITTER_FIN_LABELS = ("Bearish", "Bullish", "Neutral")
CONLL_LABELS = ("LOC", "MISC", "ORG", "PER")
WNUT17_LABELS = ("corporation", "creative-work", "group", "location", "person", "product")
SCHEMES = ("iob1", "iob2", "biluo", "iobes", "auto")

Reader = Callable[[Path, Language], Iterable[Doc]]
SpanTuple = tuple[int, int, str]

_PREFIXES = {
    "iob1": "BI",
    "iob2": "BI",
    "biluo": "BILU",
    "iobes": "BIES",
    "auto": "BIESLU",
}
_TAG = re.compile(r"([A-Z])-(\S+)")
_PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
_SST_TOKEN = re.compile(r"\(|\)|[^ \t\r\n()]+")  # leaves may hold U+00A0 ("8\xa01\/2")
_HTML_NUMBER = re.compile(r" #(\d+);")


class ConversionError(ValueError):
    """Malformed or unreadable corpus input, located by file, 1-based line and optional field."""

    def __init__(
        self, path: str | Path, line: int | None, message: str, *, field: str | None = None
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        what = self.message if self.field is None else f"{self.field}: {self.message}"
        return f"{where}: {what}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (self.path, self.line, self.message, self.field))


def _rebuild_error(path: str, line: int | None, message: str, field: str | None) -> ConversionError:
    return ConversionError(path, line, message, field=field)


class _TagError(ValueError):
    """A bad tag at a token index; readers turn it into a ConversionError with the line."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


@dataclass
class CorpusCounts:
    """What a conversion wrote: docs, tokens and label instances.

    `labels` counts entity spans per type for NER and docs per gold category for textcat.
    """

    docs: int = 0
    tokens: int = 0
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    """How to turn one benchmark's files (relative to the data root) into DocBin splits.

    `files` maps a split name to a file. When `resplit` is set, the docs of all files are pooled
    and re-split by it (AG News ships only its test file).
    """

    task: str
    lang: str
    labels: tuple[str, ...]
    files: Mapping[str, str]
    read: Reader
    resplit: Callable[[list[Doc]], dict[str, list[Doc]]] | None = None


# Tag schemes ---------------------------------------------------------------------------------


def tags_to_spans(tags: Sequence[str], *, scheme: str = "auto") -> list[SpanTuple]:
    """Decode entity tags into (start, end, label) token spans, end exclusive.

    Decoding follows conlleval, so IOB1 and IOB2 read the same way: an I- tag that does not
    continue an entity of its type starts one. `scheme` limits the allowed prefixes ("iob1" and
    "iob2": B/I; "biluo": B/I/L/U; "iobes": B/I/E/S; "auto": any), and "iob2" rejects an I- tag
    that starts an entity, because a file that does so is IOB1 or broken.
    """
    if scheme not in _PREFIXES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    spans: list[SpanTuple] = []
    start: int | None = None
    label = ""
    for i, tag in enumerate(tags):
        prefix, tag_label = _split_tag(tag, i, scheme)
        continues = start is not None and prefix in "IEL" and tag_label == label
        if start is not None and not continues:
            spans.append((start, i, label))
            start = None
        if prefix == "O":
            continue
        if start is None:
            if scheme == "iob2" and prefix == "I":
                raise _TagError(i, f"{tag!r} starts an entity, which IOB2 forbids (IOB1 data?)")
            start, label = i, tag_label
        if prefix in "ELSU":
            spans.append((start, i + 1, label))
            start = None
    if start is not None:
        spans.append((start, len(tags), label))
    return spans


def spans_to_tags(spans: Iterable[SpanTuple], length: int, *, scheme: str = "iob2") -> list[str]:
    """Encode sorted, non-overlapping (start, end, label) spans as `length` tags of `scheme`.

    IOB1 uses B- only for an entity that directly follows one of the same type.
    """
    if scheme not in ("iob1", "iob2", "biluo", "iobes"):
        raise ValueError(f"cannot encode tag scheme {scheme!r}")
    tags = ["O"] * length
    previous: SpanTuple | None = None
    for start, end, label in sorted(spans):
        inside = "I-" + label
        tags[start:end] = [inside] * (end - start)
        if scheme == "iob2" or (scheme in ("biluo", "iobes") and end - start > 1):
            tags[start] = "B-" + label
        elif scheme == "iob1" and previous is not None and previous[1:] == (start, label):
            tags[start] = "B-" + label
        if scheme in ("biluo", "iobes"):
            last, single = ("L", "U") if scheme == "biluo" else ("E", "S")
            tags[end - 1] = f"{single if end - start == 1 else last}-{label}"
        previous = (start, end, label)
    return tags


def _split_tag(tag: str, index: int, scheme: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    match = _TAG.fullmatch(tag)
    if match is None or match.group(1) not in _PREFIXES[scheme]:
        allowed = ", ".join(["O"] + [f"{prefix}-X" for prefix in _PREFIXES[scheme]])
        raise _TagError(index, f"{tag!r} is not one of {allowed} (scheme {scheme})")
    return match.group(1), match.group(2)


# Line-level input ----------------------------------------------------------------------------


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, line with its ending), decoding UTF-8 line by line to locate errors."""
    try:
        with Path(path).open("rb") as file:
            for number, raw in enumerate(file, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    bad = raw[err.start : err.start + 1].hex()
                    message = f"invalid UTF-8 (byte 0x{bad} at offset {err.start})"
                    raise ConversionError(path, number, message) from None
                yield number, text.removeprefix("\ufeff") if number == 1 else text
    except OSError as err:
        raise ConversionError(path, None, f"cannot read file: {err.strerror or err}") from err


def _read_csv(path: Path, *, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Yield (physical start line, fields) per CSV record; quoted fields may span lines.

    Tab-separated files are read without quote handling, as GLUE writes them.
    """
    lines = _read_lines(path)
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    texts = (text for _, text in lines)
    reader = csv.reader(texts, delimiter=delimiter, quoting=quoting, strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ConversionError(path, start, f"malformed CSV: {err}") from None
        if row:
            yield start, row
        start = reader.line_num + 1


# NER readers ---------------------------------------------------------------------------------


def read_conll(
    path: str | Path,
    *,
    vocab: Vocab,
    scheme: str = "auto",
    word_column: int = 0,
    tag_column: int = -1,
    labels: Collection[str] | None = None,
) -> Iterator[Doc]:
    """Read a CoNLL-style file (one token per line, blank line between sentences) as Docs.

    Columns are split on tabs when a line has one (WNUT-17), else on spaces. Whitespace-only
    lines end a sentence and `-DOCSTART-` lines mark documents, never tokens, even inside a
    sentence block (CoNLL-2002 Dutch). `labels` restricts the entity types.
    """
    path = Path(path)
    rows: list[tuple[int, str, str]] = []
    n_columns = 0
    for number, text in _read_lines(path):
        line = text.rstrip("\r\n")
        cells = line.split("\t") if "\t" in line else [c for c in line.split(" ") if c]
        if not line.strip() or cells[0] == "-DOCSTART-":
            if rows:
                yield _conll_doc(path, vocab, rows, scheme, labels)
            rows = []
            continue
        if not n_columns:
            n_columns = len(cells)
            _check_columns(path, number, n_columns, word_column, tag_column)
        elif len(cells) != n_columns:
            raise ConversionError(path, number, f"expected {n_columns} columns, got {len(cells)}")
        rows.append((number, cells[word_column], cells[tag_column]))
    if rows:
        yield _conll_doc(path, vocab, rows, scheme, labels)


def _check_columns(
    path: Path, line: int, n_columns: int, word_column: int, tag_column: int
) -> None:
    if not all(-n_columns <= column < n_columns for column in (word_column, tag_column)):
        message = f"word column {word_column} or tag column {tag_column} not in {n_columns} columns"
        raise ConversionError(path, line, message)
    if word_column % n_columns == tag_column % n_columns:
        raise ConversionError(path, line, f"expected a word and a tag column, got {n_columns}")


def _conll_doc(
    path: Path,
    vocab: Vocab,
    rows: list[tuple[int, str, str]],
    scheme: str,
    labels: Collection[str] | None,
) -> Doc:
    lines, words, tags = zip(*rows, strict=True)
    try:
        spans = tags_to_spans(tags, scheme=scheme)
    except _TagError as err:
        raise ConversionError(path, lines[err.index], err.message, field="tag") from None
    if labels is not None:
        for start, _, label in spans:
            if label not in labels:
                message = f"unknown entity label {label!r} (expected one of {', '.join(labels)})"
                raise ConversionError(path, lines[start], message, field="tag")
    doc = _words_doc(vocab, words)
    doc.set_ents([Span(doc, start, end, label=label) for start, end, label in spans])
    return doc


def read_jsonl_ner(
    path: str | Path,
    *,
    nlp: Language,
    text_field: str = "text",
    spans_field: str | None = None,
    labels: Collection[str] | None = None,
) -> Iterator[Doc]:
    """Read JSONL records {"text": ..., "spans"/"ents": [{"start", "end", "label"}]} as Docs.

    Character offsets must fall on token boundaries of `nlp`'s tokenizer; spans_field=None
    takes "spans", else "ents".
    """
    path = Path(path)
    for number, record in _read_jsonl(path):
        text = _text_field(path, number, record, text_field)
        name = spans_field or ("ents" if "ents" in record and "spans" not in record else "spans")
        raw_spans = record.get(name)
        if not isinstance(raw_spans, list):
            raise ConversionError(path, number, "missing or not a list", field=name)
        doc = nlp.make_doc(text)
        spans = [
            _char_span(path, number, doc, item, f"{name}[{i}]", labels)
            for i, item in enumerate(raw_spans)
        ]
        try:
            doc.set_ents(spans)
        except ValueError as err:
            raise ConversionError(path, number, f"overlapping spans: {err}", field=name) from None
        yield doc


def _char_span(
    path: Path, line: int, doc: Doc, item: Any, where: str, labels: Collection[str] | None
) -> Span:
    if not isinstance(item, dict):
        raise ConversionError(path, line, "expected an object with start, end, label", field=where)
    start, end, label = item.get("start"), item.get("end"), item.get("label")
    if not (isinstance(start, int) and isinstance(end, int) and isinstance(label, str)):
        raise ConversionError(path, line, "needs integer start/end and string label", field=where)
    if not 0 <= start < end <= len(doc.text):
        message = f"offsets {start}-{end} outside text of length {len(doc.text)}"
        raise ConversionError(path, line, message, field=where)
    if labels is not None and label not in labels:
        raise ConversionError(path, line, f"unknown label {label!r}", field=where)
    span = doc.char_span(start, end, label=label, alignment_mode="strict")
    if span is None:
        message = f"{start}-{end} {doc.text[start:end]!r} does not fall on token boundaries"
        raise ConversionError(path, line, message, field=where)
    return span


# Text-classification readers -----------------------------------------------------------------


def read_csv_textcat(
    path: str | Path,
    *,
    nlp: Language,
    text_field: str = "text",
    label_field: str = "label",
    labels: Sequence[str] | None = None,
    label_map: Mapping[str, str] | None = None,
    delimiter: str = ",",
) -> Iterator[Doc]:
    """Read a CSV (or, with delimiter="\\t", unquoted TSV) file with a header row as Docs.

    Raw label values go through `label_map`; `labels` fixes the label set and order, otherwise
    it is every label seen, sorted.
    """
    path = Path(path)
    rows = _read_csv(path, delimiter=delimiter)
    _, header = next(rows, (1, []))
    columns = {name: i for i, name in enumerate(header)}
    for name in (text_field, label_field):
        if name not in columns:
            message = f"no column {name!r} in header {header}"
            raise ConversionError(path, 1, message, field=name)
    records = []
    for number, row in rows:
        if len(row) != len(header):
            raise ConversionError(path, number, f"expected {len(header)} fields, got {len(row)}")
        text = _require_text(path, number, row[columns[text_field]], text_field)
        records.append((number, text, [row[columns[label_field]]]))
    yield from _textcat_docs(path, nlp, records, labels, label_map, label_field)


def read_jsonl_textcat(
    path: str | Path,
    *,
    nlp: Language,
    text_field: str = "text",
    label_field: str = "label",
    labels: Sequence[str] | None = None,
    label_map: Mapping[str, str] | None = None,
) -> Iterator[Doc]:
    """Read JSONL records {"text": ..., "label": ...} as Docs; a list of labels is multi-label.

    Labels may be strings or integers; `labels` and `label_map` work as in `read_csv_textcat`.
    """
    path = Path(path)
    records = []
    for number, record in _read_jsonl(path):
        text = _text_field(path, number, record, text_field)
        value = record.get(label_field)
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str | int) for v in values):
            message = "missing, or not a string, integer or list of them"
            raise ConversionError(path, number, message, field=label_field)
        records.append((number, text, [str(v) for v in values]))
    yield from _textcat_docs(path, nlp, records, labels, label_map, label_field)


def read_stsa(
    path: str | Path, *, vocab: Vocab, labels: Sequence[str] = SST2_LABELS
) -> Iterator[Doc]:
    """Read Kim (2014) `stsa.*` files: "<label index> <tokenised sentence>" per line.

    Tokens are the space-separated words; the label index picks from `labels`
    (SST-2 by default, pass SST5_LABELS for `stsa.fine.*`).
    """
    path = Path(path)
    for number, text in _read_lines(path):
        if not text.strip():
            continue
        raw_label, _, sentence = text.strip().partition(" ")
        if raw_label not in {str(i) for i in range(len(labels))} or not sentence.strip():
            message = f"expected '<label 0-{len(labels) - 1}> <sentence>', got {text.strip()!r}"
            raise ConversionError(path, number, message)
        yield _one_hot(_words_doc(vocab, sentence.split()), labels, {labels[int(raw_label)]})


def read_sst_trees(
    path: str | Path, *, vocab: Vocab, labels: Sequence[str] = SST5_LABELS
) -> Iterator[Doc]:
    """Read SST PTB-style trees, one per line: the leaves are the tokens, the root the class.

    Root labels 0-4 map to SST5_LABELS ("very negative" ... "very positive"). Bracket escapes
    (-LRB-, -RRB-, ...) and backslash escapes (\\/, \\*) are undone; quote tokens `` and '' stay.
    """
    path = Path(path)
    for number, text in _read_lines(path):
        if not text.strip():
            continue
        try:
            label, leaves = parse_sst_tree(text, n_labels=len(labels))
        except ValueError as err:
            raise ConversionError(path, number, str(err)) from None
        doc = _words_doc(vocab, [_unescape_ptb(leaf) for leaf in leaves])
        yield _one_hot(doc, labels, {labels[label]})


def parse_sst_tree(text: str, *, n_labels: int = 5) -> tuple[int, list[str]]:
    """Parse "(3 (2 It) (4 works))" into (root label, leaves); errors name the column."""
    tokens = [(match.group(), match.start() + 1) for match in _SST_TOKEN.finditer(text)]
    leaves: list[str] = []
    label, end = _parse_sst_node(tokens, 0, leaves, n_labels)
    if end < len(tokens):
        raise ValueError(f"column {tokens[end][1]}: text after the end of the tree")
    return label, leaves


def _parse_sst_node(
    tokens: list[tuple[str, int]], i: int, leaves: list[str], n_labels: int
) -> tuple[int, int]:
    """Parse the node at tokens[i] ("(label leaf)" or "(label node+)"); return label, next i."""
    _expect(tokens, i, "(")
    label, column = _token(tokens, i + 1)
    if label not in {str(n) for n in range(n_labels)}:
        raise ValueError(f"column {column}: expected a label 0-{n_labels - 1}, got {label!r}")
    child, column = _token(tokens, i + 2)
    if child == ")":
        raise ValueError(f"column {column}: empty node")
    if child != "(":
        leaves.append(child)
        i += 3
    else:
        i += 2
        while _token(tokens, i)[0] == "(":
            _, i = _parse_sst_node(tokens, i, leaves, n_labels)
    _expect(tokens, i, ")")
    return int(label), i + 1


def _token(tokens: list[tuple[str, int]], i: int) -> tuple[str, int]:
    if i >= len(tokens):
        column = tokens[-1][1] + len(tokens[-1][0]) if tokens else 1
        raise ValueError(f"column {column}: unexpected end of tree")
    return tokens[i]


def _expect(tokens: list[tuple[str, int]], i: int, bracket: str) -> None:
    token, column = _token(tokens, i)
    if token != bracket:
        raise ValueError(f"column {column}: expected {bracket!r}, got {token!r}")


def _unescape_ptb(token: str) -> str:
    return _PTB_ESCAPES.get(token, token).replace("\\/", "/").replace("\\*", "*")


def read_ag_news(
    path: str | Path, *, nlp: Language, labels: Sequence[str] | None = None
) -> Iterator[Doc]:
    """Read the AG News CSV (no header: class index 1-4, title, description) as Docs.

    The text is "title description" after undoing the corpus' escapes: " #39;" and friends were
    HTML character references, "\\$" is "$" and other backslashes stand for line breaks.
    `labels` defaults to the names in classes.txt beside the CSV.
    """
    path = Path(path)
    if labels is None:
        classes = _read_lines(path.parent / "classes.txt")
        labels = [name.strip() for _, name in classes if name.strip()]
    indices = {str(i): name for i, name in enumerate(labels, start=1)}
    for number, row in _read_csv(path):
        if len(row) != 3:
            raise ConversionError(path, number, f"expected 3 fields, got {len(row)}")
        if row[0] not in indices:
            message = f"unknown class index {row[0]!r} (expected 1-{len(labels)})"
            raise ConversionError(path, number, message, field="class index")
        text = _require_text(path, number, _clean_ag_news(f"{row[1]} {row[2]}"), "text")
        yield _one_hot(nlp.make_doc(text), labels, {indices[row[0]]})


def _clean_ag_news(text: str) -> str:
    text = _HTML_NUMBER.sub(r"&#\1;", text).replace("\\$", "$").replace("\\", " ")
    return unescape(text)


def stratified_split(
    docs: Sequence[Doc], *, fractions: Mapping[str, float] | None = None, seed: int = 0
) -> dict[str, list[Doc]]:
    """Split single-label docs per class into train/dev/test (80/10/10 by default), seeded.

    Classes are taken in sorted order and shuffled with one `random.Random(seed)`; each split
    gets round(n * fraction) docs of a class and the last split the rest. Splits keep the input
    order, so the result depends only on the docs and the seed.
    """
    fractions = fractions or {"train": 0.8, "dev": 0.1, "test": 0.1}
    names = list(fractions)
    by_label: dict[str, list[int]] = {}
    for i, doc in enumerate(docs):
        by_label.setdefault(max(doc.cats, key=doc.cats.__getitem__), []).append(i)
    rng = random.Random(seed)
    chosen: dict[str, list[int]] = {name: [] for name in names}
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        cut = 0
        for name in names[:-1]:
            size = round(len(indices) * fractions[name])
            chosen[name] += indices[cut : cut + size]
            cut += size
        chosen[names[-1]] += indices[cut:]
    return {name: [docs[i] for i in sorted(chosen[name])] for name in names}


def _textcat_docs(
    path: Path,
    nlp: Language,
    records: list[tuple[int, str, list[str]]],
    labels: Sequence[str] | None,
    label_map: Mapping[str, str] | None,
    label_field: str,
) -> Iterator[Doc]:
    """Map raw labels, check them against the label set and build one-hot docs."""
    golds = [set(values) for _, _, values in records]
    if label_map is not None:
        for (number, _, _), gold in zip(records, golds, strict=True):
            _check_labels(path, number, gold, label_map, label_field)
        golds = [{label_map[value] for value in gold} for gold in golds]
    label_set = list(labels) if labels is not None else sorted(set().union(*golds))
    for (number, text, _), gold in zip(records, golds, strict=True):
        _check_labels(path, number, gold, label_set, label_field)
        yield _one_hot(nlp.make_doc(text), label_set, gold)


def _check_labels(
    path: Path, line: int, gold: set[str], known: Collection[str], label_field: str
) -> None:
    unknown = sorted(gold.difference(known))
    if unknown:
        message = f"unknown label {unknown[0]!r} (expected one of {', '.join(known)})"
        raise ConversionError(path, line, message, field=label_field)


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in _read_lines(path):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            message = f"invalid JSON: {err.msg} (column {err.colno})"
            raise ConversionError(path, number, message) from None
        if not isinstance(record, dict):
            raise ConversionError(path, number, "expected a JSON object")
        yield number, record


def _text_field(path: Path, line: int, record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        raise ConversionError(path, line, "missing or not a string", field=name)
    return _require_text(path, line, value, name)


def _require_text(path: Path, line: int, text: str, name: str) -> str:
    if not text.strip():
        raise ConversionError(path, line, "empty text", field=name)
    return text


def _words_doc(vocab: Vocab, words: Sequence[str]) -> Doc:
    return Doc(vocab, words=list(words), spaces=[True] * (len(words) - 1) + [False])


def _one_hot(doc: Doc, labels: Sequence[str], gold: Collection[str]) -> Doc:
    doc.cats = {label: float(label in gold) for label in labels}
    return doc


# Writing -------------------------------------------------------------------------------------


def count_docs(docs: Iterable[Doc]) -> CorpusCounts:
    """Count docs, tokens and entity spans per type or gold categories (score >= 0.5) per label."""
    counts = CorpusCounts()
    labels: Counter[str] = Counter()
    for doc in docs:
        counts.docs += 1
        counts.tokens += len(doc)
        labels.update(ent.label_ for ent in doc.ents)
        labels.update(label for label, score in doc.cats.items() if score >= 0.5)
    counts.labels = dict(sorted(labels.items()))
    return counts


def write_docbin(docs: Iterable[Doc], path: str | Path) -> CorpusCounts:
    """Write docs to a .spacy DocBin (only once all are read) and count them."""
    docs = list(docs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=False).to_disk(path)
    return count_docs(docs)


def _read_sst2(path: Path, nlp: Language) -> Iterable[Doc]:
    """GLUE `dev.tsv` (header sentence, label) or a harvardnlp `stsa.binary.*` file."""
    if path.suffix == ".tsv":
        label_map = dict(zip("01", SST2_LABELS, strict=True))
        return read_csv_textcat(
            path,
            nlp=nlp,
            text_field="sentence",
            labels=SST2_LABELS,
            label_map=label_map,
            delimiter="\t",
        )
    return read_stsa(path, vocab=nlp.vocab)


def _conll_files(folder: str, train: str, dev: str, test: str) -> dict[str, str]:
    return {"train": f"{folder}/{train}", "dev": f"{folder}/{dev}", "test": f"{folder}/{test}"}


DATASETS: dict[str, DatasetSpec] = {
    "conll2003": DatasetSpec(
        "ner",
        "en",
        CONLL_LABELS,
        _conll_files("conll2003", "eng.train", "eng.testa", "eng.testb"),
        lambda path, nlp: read_conll(path, vocab=nlp.vocab, scheme="iob1", labels=CONLL_LABELS),
    ),
    "conll2003_iob2": DatasetSpec(
        "ner",
        "en",
        CONLL_LABELS,
        _conll_files("conll2003/iob2_NguyenHoangAn0511", "eng.train", "eng.testa", "eng.testb"),
        lambda path, nlp: read_conll(path, vocab=nlp.vocab, scheme="iob2", labels=CONLL_LABELS),
    ),
    "wnut17": DatasetSpec(
        "ner",
        "en",
        WNUT17_LABELS,
        _conll_files(
            "wnut17", "wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"
        ),
        lambda path, nlp: read_conll(path, vocab=nlp.vocab, scheme="iob2", labels=WNUT17_LABELS),
    ),
    # The Spanish files are called IOB2 but start a few entities with I-: read them leniently.
    "conll2002_es": DatasetSpec(
        "ner",
        "es",
        CONLL_LABELS,
        _conll_files("conll2002", "esp.train", "esp.testa", "esp.testb"),
        lambda path, nlp: read_conll(path, vocab=nlp.vocab, scheme="auto", labels=CONLL_LABELS),
    ),
    "conll2002_nl": DatasetSpec(
        "ner",
        "nl",
        CONLL_LABELS,
        _conll_files("conll2002", "ned.train", "ned.testa", "ned.testb"),
        lambda path, nlp: read_conll(path, vocab=nlp.vocab, scheme="iob2", labels=CONLL_LABELS),
    ),
    "sst2": DatasetSpec(
        "textcat",
        "en",
        SST2_LABELS,
        {
            **_conll_files(
                "sst2/harvardnlp_stsa_binary",
                "stsa.binary.train",
                "stsa.binary.dev",
                "stsa.binary.test",
            ),
            "glue_dev": "sst2/dev.tsv",
        },
        _read_sst2,
    ),
    "sst5": DatasetSpec(
        "textcat",
        "en",
        SST5_LABELS,
        _conll_files("sst5/trees", "train.txt", "dev.txt", "test.txt"),
        lambda path, nlp: read_sst_trees(path, vocab=nlp.vocab),
    ),
    "ag_news": DatasetSpec(
        "textcat",
        "en",
        ("World", "Sports", "Business", "Sci/Tech"),
        {"all": "ag_news/test.csv"},
        lambda path, nlp: read_ag_news(path, nlp=nlp),
        resplit=stratified_split,
    ),
    "twitter_fin": DatasetSpec(
        "textcat",
        "en",
        TWITTER_FIN_LABELS,
        {
            "train": "twitter_financial_news_sentiment/sent_train.csv",
            "dev": "twitter_financial_news_sentiment/sent_valid.csv",
        },
        lambda path, nlp: read_csv_textcat(
            path,
            nlp=nlp,
            labels=TWITTER_FIN_LABELS,
            label_map=dict(zip("012", TWITTER_FIN_LABELS, strict=True)),
        ),
    ),
}


def convert_dataset(name: str, data_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Convert a registered benchmark under `data_dir` into `out_dir/<split>.spacy` DocBins.

    Splits are train/dev/test, except: twitter_fin has train/dev (dev is the published validation
    set; there is no test set), sst2 adds `glue_dev` (GLUE's dev.tsv) to the stsa.binary splits,
    and ag_news is a stratified 80/10/10 split (seed 0) of its only file, test.csv. Every split is
    read before any file is written.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    spec = DATASETS[name]
    nlp = spacy.blank(spec.lang)
    splits = {
        split: list(spec.read(Path(data_dir) / relative, nlp))
        for split, relative in spec.files.items()
    }
    if spec.resplit is not None:
        splits = spec.resplit([doc for docs in splits.values() for doc in docs])
    paths = {split: Path(out_dir) / f"{split}.spacy" for split in splits}
    for split, docs in splits.items():
        write_docbin(docs, paths[split])
    return paths


FORMATS: dict[str, Callable[..., Iterable[Doc]]] = {
    "conll": lambda path, nlp, **opts: read_conll(path, vocab=nlp.vocab, **opts),
    "wnut": lambda path, nlp, **opts: read_conll(
        path, vocab=nlp.vocab, **{"scheme": "iob2", **opts}
    ),
    "jsonl-ner": lambda path, nlp, **opts: read_jsonl_ner(path, nlp=nlp, **opts),
    "jsonl-textcat": lambda path, nlp, **opts: read_jsonl_textcat(path, nlp=nlp, **opts),
    "csv-textcat": lambda path, nlp, **opts: read_csv_textcat(path, nlp=nlp, **opts),
    "tsv-textcat": lambda path, nlp, **opts: read_csv_textcat(
        path, nlp=nlp, delimiter="\t", **opts
    ),
    "sst-trees": lambda path, nlp, **opts: read_sst_trees(path, vocab=nlp.vocab, **opts),
    "stsa": lambda path, nlp, **opts: read_stsa(path, vocab=nlp.vocab, **opts),
}


def convert_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    format: str,
    lang: str = "en",
    **options: Any,
) -> CorpusCounts:
    """Convert one file of a FORMATS format into a .spacy DocBin and count what was written.

    `lang` picks the blank pipeline whose vocab and tokenizer build the docs; `options` go to
    the format's reader (e.g. scheme="iob1" for "conll", text_field="sentence" for csv).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    docs = FORMATS[format](Path(input_path), spacy.blank(lang), **options)
    return write_docbin(docs, output_path)
