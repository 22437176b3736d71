"""Helpers shared by the corpus reader tests: files written by the test, located errors."""

from pathlib import Path

import pytest
from spacy.tokens import Doc

from spacy_lsllama.corpora import ConversionError


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def ents(doc: Doc) -> list[tuple[str, str]]:
    return [(ent.text, ent.label_) for ent in doc.ents]


def top_cat(doc: Doc) -> str:
    return max(doc.cats, key=doc.cats.__getitem__)


def error_of(call, *args, **kwargs) -> ConversionError:
    with pytest.raises(ConversionError) as info:
        list(call(*args, **kwargs))
    return info.value
