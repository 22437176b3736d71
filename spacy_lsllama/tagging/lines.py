"""Reading input lines and deciding whether each holds a record to tag.

A line is split into its top-level fields, each kept as the exact JSON text it had, so the
fields the tool does not change are written back byte for byte: numbers keep every digit
(``3.141592653589793238``, ``1e400``, integers of any length) and strings keep their escapes.
Anything that goes wrong decoding one line is that line's error (`LineError`), never the run's.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import IO, Any

EMPTY_LINE = "empty line"
# A JSON line may spend several bytes on one character (escapes, other fields); lines longer
# than this many bytes per --max-chars character are rejected without being parsed.
BYTES_PER_CHAR = 8
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class LineError(ValueError):
    """An input line that cannot be tagged; the message is the reason."""


@dataclass(frozen=True)
class Line:
    """One line of input, without its line break."""

    number: int
    raw: bytes
    end: int  # input bytes consumed up to the end of this line
    truncated: bool  # longer than the byte limit: raw holds only its start


@dataclass(frozen=True)
class Field:
    """A top-level field of a record: its decoded key and the exact JSON text of key and value."""

    key: str
    raw_key: str
    raw_value: str


@dataclass(frozen=True)
class Record:
    """A line that can be tagged: its text and all its fields, in input order."""

    text: str
    fields: tuple[Field, ...]


class LineReader:
    """Read lines lazily, holding at most BYTES_PER_CHAR * ``max_chars`` bytes of one line.

    It keeps a SHA-256 of every byte read, so a resumed run can check that its input starts
    with the very bytes the interrupted run read (`digest`, `consumed`).
    """

    def __init__(self, stream: IO[bytes], max_chars: int) -> None:
        self.stream = stream
        self.max_bytes = max_chars * BYTES_PER_CHAR
        self.hash = hashlib.sha256()
        self.consumed = 0
        # (line number, bytes read, hash) after each line not yet checkpointed
        self.marks: deque[tuple[int, int, Any]] = deque()
        self.lines = self._lines()

    def __iter__(self) -> Iterator[Line]:
        """The lines not read yet: iterating again continues where the last loop stopped."""
        return self.lines

    def _lines(self) -> Iterator[Line]:
        number = 0
        while raw := self._read(self.max_bytes + 1):
            number += 1
            truncated = len(raw) > self.max_bytes and not raw.endswith(b"\n")
            if truncated:
                self._discard_rest_of_line()
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            raw = raw.removesuffix(b"\n").removesuffix(b"\r")
            self.marks.append((number, self.consumed, self.hash.copy()))
            yield Line(number, raw, self.consumed, truncated)

    def mark(self, number: int) -> tuple[int, str]:
        """Bytes read up to the end of line ``number``, and their SHA-256 (hex).

        Marks of earlier lines are dropped: ask in increasing order of line number.
        """
        if number == 0:
            return 0, hashlib.sha256().hexdigest()
        while self.marks and self.marks[0][0] < number:
            self.marks.popleft()
        if not self.marks or self.marks[0][0] != number:
            raise ValueError(f"line {number} has not been read")
        _, consumed, digest = self.marks[0]
        return consumed, digest.hexdigest()

    def _read(self, limit: int) -> bytes:
        raw = self.stream.readline(limit)
        self.hash.update(raw)
        self.consumed += len(raw)
        return raw

    def _discard_rest_of_line(self) -> None:
        while chunk := self._read(1 << 20):
            if chunk.endswith(b"\n"):
                return


class _Number:
    """A JSON number, never converted: no precision lost, no limit on digits, no ``inf``."""

    __slots__ = ("raw",)

    def __init__(self, raw: str) -> None:
        self.raw = raw


class _NonStandardConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


_DECODER = json.JSONDecoder(parse_float=_Number, parse_int=_Number, parse_constant=_reject_constant)
_scan_value = _DECODER.scan_once  # type: ignore[attr-defined]


def parse_line(line: Line, text_field: str, max_chars: int) -> Record:
    """The record on ``line``, or a LineError saying why it cannot be tagged.

    Every exception raised while decoding the line becomes its LineError.
    """
    if line.truncated:
        raise LineError(f"line is longer than {max_chars * BYTES_PER_CHAR:,} bytes")
    if not line.raw.strip():
        raise LineError(EMPTY_LINE)
    try:
        source = line.raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LineError(f"invalid UTF-8 at byte {err.start + 1}") from None
    try:
        value = _DECODER.decode(source)
        if not isinstance(value, dict):
            raise LineError(f"expected a JSON object, got {json_type(value)}")
        fields = _split_fields(source)
    except LineError:
        raise
    except json.JSONDecodeError as err:
        raise LineError(f"invalid JSON: {err.msg} (column {err.colno})") from None
    except _NonStandardConstant as err:
        raise LineError(f"invalid JSON: {err} is not a JSON value (RFC 8259)") from None
    except RecursionError:
        raise LineError("invalid JSON: nested too deeply to decode") from None
    except Exception as err:  # one line's problem must never end the run
        raise LineError(f"cannot decode the line: {type(err).__name__}: {err}") from None
    return Record(_text(fields, text_field, max_chars), fields)


def _split_fields(source: str) -> tuple[Field, ...]:
    """The top-level fields of ``source``, a JSON object already known to be valid."""
    fields = []
    index = _skip_space(source, _skip_space(source, 0) + 1)
    while source[index] != "}":
        key, end = scanstring(source, index + 1)
        raw_key = source[index:end]
        start = _skip_space(source, _skip_space(source, end) + 1)
        _, end = _scan_value(source, start)
        fields.append(Field(key, raw_key, source[start:end]))
        index = _skip_space(source, end)
        if source[index] == ",":
            index = _skip_space(source, index + 1)
    return tuple(fields)


def _skip_space(source: str, index: int) -> int:
    match = _WHITESPACE.match(source, index)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _text(fields: tuple[Field, ...], text_field: str, max_chars: int) -> str:
    """The value of the text field, which must occur once and hold a string."""
    found = [field for field in fields if field.key == text_field]
    if not found:
        raise LineError(f"field {text_field!r} is missing")
    if len(found) > 1:
        raise LineError(f"field {text_field!r} occurs {len(found)} times")
    value = _scan_value(found[0].raw_value, 0)[0]
    if not isinstance(value, str):
        raise LineError(f"field {text_field!r} must be a string, got {json_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise LineError(
            f"field {text_field!r} has an unpaired surrogate at character {err.start}"
        ) from None
    if len(value) > max_chars:
        raise LineError(
            f"field {text_field!r} has {len(value):,} characters, "
            f"more than --max-chars {max_chars:,}"
        )
    return value


def json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
