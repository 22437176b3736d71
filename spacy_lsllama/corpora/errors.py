"""Errors raised while reading a corpus: each one names the file, the 1-based line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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


class TagError(ValueError):
    """A bad tag at a token index; readers turn it into a ConversionError with the line."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message
