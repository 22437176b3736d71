"""A whole tagging job under random input: random bytes and random JSON lines (Hypothesis)."""

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from spacy_lsllama.tagging.job import JobSpec, TagJob
from spacy_lsllama.tagging.local import LocalEngine
from spacy_lsllama.tagging.run import TagOptions
from spacy_lsllama.testing import rule_pipeline

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=8,
)
RECORD_LINES = st.dictionaries(st.sampled_from(["text", "ents", "id", "x"]), JSON).map(
    lambda record: json.dumps(record, ensure_ascii=False).encode()
)
# Lines that broke earlier versions: non-standard constants, huge numbers, deep nesting.
TRICKY_LINES = st.sampled_from(
    [
        b'{"text": "Alice", "x": NaN}',
        b'{"text": "Alice", "x": -Infinity}',
        b'{"text": "Alice", "x": 1e400, "y": 3.141592653589793238}',
        b'{"text": "Alice", "n": ' + b"9" * 5000 + b"}",
        b'{"text": "Alice", "deep": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"text": "a\u001b[2J", "ents": 1, "ents": 2}',
    ]
)
LINES = st.lists(st.binary(max_size=40) | RECORD_LINES | TRICKY_LINES, max_size=12)


@pytest.fixture(scope="module")
def nlp(tmp_path_factory):
    return spacy.load(rule_pipeline(tmp_path_factory.mktemp("fuzz") / "rules"))


def run_job(nlp, directory: Path, data: bytes) -> TagJob:
    source = directory / "in.jsonl"
    source.write_bytes(data)
    spec = JobSpec(
        input=str(source),
        model="rules",
        output=directory / "out.jsonl",
        options=TagOptions(batch_size=3),
    )
    job = TagJob(spec, Console(file=io.StringIO()))
    job.run(lambda: LocalEngine(nlp))
    return job


@settings(
    max_examples=50,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=LINES)
def test_random_input_never_crashes_and_writes_valid_json(nlp, tmp_path, lines):
    data = b"\n".join(line.replace(b"\n", b" ") for line in lines)
    job = run_job(nlp, tmp_path, data)
    assert (tmp_path / "in.jsonl").read_bytes() == data  # input unchanged
    stats = job.stats
    lines_in = data.count(b"\n") + (not data.endswith(b"\n") if data else 0)  # JSONL: \n only
    assert stats.read == stats.written + stats.skipped == lines_in
    written = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert len(written) == stats.written
    for line in written:
        constant = lambda name: pytest.fail(f"wrote {name}")  # noqa: E731
        record = json.loads(line, parse_int=Decimal, parse_constant=constant)
        assert isinstance(record["text"], str) and isinstance(record["ents"], list)
