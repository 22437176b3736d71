"""Entity tag schemes, in one place: decode tags into spans, encode spans as tags, detect a scheme.

Files come in IOB1, IOB2, IOBES or BILUO (`FILE_SCHEMES`, lower case as on the command line);
the NER component trains on BIO or BILUO tags (`MODEL_SCHEMES`). Decoding follows conlleval,
so every scheme reads the same way and the spans agree with seqeval's and spaCy's scorers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .errors import TagError

FILE_SCHEMES = ("iob1", "iob2", "biluo", "iobes", "auto")
MODEL_SCHEMES = ("BIO", "BILUO")
SpanTuple = tuple[int, int, str]

_PREFIXES = {"iob1": "BI", "iob2": "BI", "biluo": "BILU", "iobes": "BIES", "auto": "BIESLU"}
_TAG = re.compile(r"([A-Z])-(.+)")


def is_tag(text: str) -> bool:
    """True for `O` and for `P-LABEL` with a prefix of any scheme."""
    match = _TAG.fullmatch(text)
    return text == "O" or (match is not None and match.group(1) in _PREFIXES["auto"])


def tags_to_spans(tags: Sequence[str], *, scheme: str = "auto") -> list[SpanTuple]:
    """Decode entity tags into (start, end, label) token spans, end exclusive.

    Decoding follows conlleval, so IOB1 and IOB2 read the same way: an I- tag that does not
    continue an entity of its type starts one. `scheme` limits the allowed prefixes ("iob1" and
    "iob2": B/I; "biluo": B/I/L/U; "iobes": B/I/E/S; "auto": any), and "iob2" rejects an I- tag
    that starts an entity, because a file that does so is IOB1 or broken.
    """
    if scheme not in _PREFIXES:
        raise ValueError(
            f"unknown tag scheme {scheme!r}; expected one of {', '.join(FILE_SCHEMES)}"
        )
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
                raise TagError(i, f"{tag!r} starts an entity, which IOB2 forbids (IOB1 data?)")
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
        raise TagError(index, f"{tag!r} is not one of {allowed} (scheme {scheme})")
    return match.group(1), match.group(2)


class SchemeDetector:
    """Detect a file's scheme from its tag sequences, fed one sentence at a time.

    E-/S- prefixes mean IOBES and L-/U- BILUO; otherwise an I- tag that starts an entity
    means IOB1, and B-/I- alone IOB2. No entity at all reads as IOB2.
    """

    def __init__(self) -> None:
        self.prefixes: set[str] = set()
        self.starts_with_inside = False

    def update(self, tags: Sequence[str]) -> None:
        previous = "O"
        for tag in tags:
            prefix, _, label = tag.partition("-")
            self.prefixes.add(prefix)
            if prefix == "I" and previous not in (f"B-{label}", f"I-{label}"):
                self.starts_with_inside = True
            previous = tag

    @property
    def scheme(self) -> str:
        if self.prefixes & set("ES") and self.prefixes & set("LU"):
            return "mixed (IOBES and BILUO prefixes)"
        if self.prefixes & set("ES"):
            return "iobes"
        if self.prefixes & set("LU"):
            return "biluo"
        return "iob1" if self.starts_with_inside else "iob2"


def tag_names(labels: Sequence[str], scheme: str) -> list[str]:
    """All tags of a model scheme (BIO or BILUO) for the given entity labels, `O` first."""
    if scheme not in MODEL_SCHEMES:
        raise ValueError(f"Unknown tag scheme '{scheme}': use one of {', '.join(MODEL_SCHEMES)}.")
    prefixes = "BI" if scheme == "BIO" else "BILU"
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in prefixes]


def biluo_to_scheme(tags: Sequence[str | None], scheme: str) -> list[str | None]:
    """Convert spaCy's BILUO tags (None or '-' for unknown) to a model scheme."""
    if scheme == "BILUO":
        return [None if tag in (None, "-") else tag for tag in tags]
    converted: list[str | None] = []
    for tag in tags:
        if tag in (None, "-"):
            converted.append(None)
        elif tag[0] == "U":
            converted.append("B" + tag[1:])
        elif tag[0] == "L":
            converted.append("I" + tag[1:])
        else:
            converted.append(tag)
    return converted


def scheme_to_spans(tags: Sequence[str]) -> list[SpanTuple]:
    """(start, end, label) token spans from a BIO or BILUO tag sequence (conlleval rules)."""
    return tags_to_spans(tags, scheme="auto")
