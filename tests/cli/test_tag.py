"""Tests for ``lsllama tag``: in process with Typer's CliRunner, and as a real process in pipes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, SpanGroup
from typer.testing import CliRunner

from spacy_lsllama import __version__
from spacy_lsllama.cli.app import app
from spacy_lsllama.testing import build_tiny_model, lsllama_ner_pipeline

REPO = Path(__file__).resolve().parents[2]
RECORDS = [
    {"id": 1, "text": "Alice joined Acme Labs.", "meta": {"source": "a", "tags": [1, 2]}},
    {"id": 2, "text": "Nothing to see here."},
    {"id": 3, "text": "Zoë Smith and Alice met at Acme Labs.", "score": None},
]
BAD_LINES = {
    b"": "empty line",
    b"   ": "empty line",
    b"not json": "invalid JSON: Expecting value (column 1)",
    b'{"text": "unclosed"': "invalid JSON: Expecting ',' delimiter (column 20)",
    b"[1, 2]": "expected a JSON object, got array",
    b'"just a string"': "expected a JSON object, got string",
    b'{"id": 9}': "field 'text' is missing",
    b'{"text": 42}': "field 'text' must be a string, got number",
    b'{"text": null}': "field 'text' must be a string, got null",
    b'{"text": "\\ud800 lone"}': "field 'text' has an unpaired surrogate at character 0",
    b'{"text": "caf\xe9"}': "invalid UTF-8 at byte 14",
}


def jsonl(records: list[dict]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def parse(output: str | bytes) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def tag(*args: str | Path, input: bytes | None = None, env: dict | None = None):
    env = {"TTY_COMPATIBLE": "0", **(env or {})}
    result = CliRunner().invoke(app, ["tag", *map(str, args)], input=input, env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def mixed_input(n: int, bad_every: int = 7) -> bytes:
    """``n`` lines of good records with a bad line (cycling through BAD_LINES) every few lines."""
    bad = list(BAD_LINES)
    lines = []
    for i in range(n):
        if i % bad_every == bad_every - 1:
            lines.append(bad[i // bad_every % len(bad)])
        else:
            text = f"Alice met Zoë Smith at Acme Labs, visit {i}."
            lines.append(json.dumps({"id": i, "text": text}, ensure_ascii=False).encode())
    return b"\n".join(lines) + b"\n"


def run_cli(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "spacy_lsllama.cli", "tag", *map(str, args)]
    return subprocess.run(command, capture_output=True, env=cli_env(), **kwargs)


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TTY_COMPATIBLE": "0"}


# Output records


def test_output_keeps_every_field_and_adds_exact_entities(tiny_pipeline, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(RECORDS))
    result = tag(source, "--model", tiny_pipeline)
    assert result.exit_code == 0, result.stderr
    out = parse(result.stdout)
    assert [{k: v for k, v in r.items() if k not in ("ents", "cats")} for r in out] == RECORDS
    for record in out:
        for ent in record["ents"]:
            assert record["text"][ent["start"] : ent["end"]] == ent["text"]
    assert [(e["text"], e["label"]) for e in out[2]["ents"]] == [
        ("Zoë Smith", "PERSON"),
        ("Alice", "PERSON"),
        ("Acme Labs", "ORG"),
    ]
    assert out[2]["ents"][0] == {"start": 0, "end": 9, "label": "PERSON", "text": "Zoë Smith"}
    assert out[1]["ents"] == []


def test_output_has_cats_when_the_pipeline_sets_them(tiny_pipeline, tmp_path):
    result = tag("-", "-m", tiny_pipeline, input=jsonl(RECORDS))
    for record in parse(result.stdout):
        assert set(record["cats"]) == {"POS", "NEG"}
        assert all(isinstance(score, float) for score in record["cats"].values())


def test_output_order_is_input_order(pipeline):
    records = [{"id": i, "text": f"Alice number {i} " * (i % 5 + 1)} for i in range(300)]
    result = tag("-", "-m", pipeline, "--batch-size", "7", input=jsonl(records))
    assert [record["id"] for record in parse(result.stdout)] == list(range(300))


def test_n_process_gives_the_same_output(tiny_pipeline):
    data = mixed_input(300)
    single = tag("-", "-m", tiny_pipeline, "-b", "16", input=data)
    multi = tag("-", "-m", tiny_pipeline, "-b", "16", "--n-process", "2", input=data)
    assert multi.exit_code == 0, multi.stderr
    assert multi.stdout == single.stdout


@pytest.fixture(scope="module")
def threaded_load_pipeline(tmp_path_factory) -> Path:
    """An LS-LLaMA pipeline whose loading runs torch on several threads, as a full-size one
    does: its base model, 128 wide, is cast to bfloat16 on load (a 65,536-value embedding is
    two threads' work; the default tiny model's 32,768 values are one)."""
    root = tmp_path_factory.mktemp("threaded")
    base = build_tiny_model(root / "base", hidden_size=128)
    pipeline = lsllama_ner_pipeline(root / "ner", base)
    config = pipeline / "config.cfg"
    config.write_text(config.read_text().replace('dtype = "float32"', 'dtype = "bfloat16"'))
    return pipeline


def test_n_process_tags_an_lsllama_pipeline_without_hanging(threaded_load_pipeline):
    """Workers forked from a process that ran torch on several threads hang at their first
    parallel op (GNU OpenMP): `lsllama tag --n-process 2` loads the pipeline on one thread
    and gives each worker half of the threads. A hang fails here after the timeout."""
    data = jsonl([{"id": i, "text": f"Merkel visited Tokyo today, visit {i}."} for i in range(24)])
    command = [sys.executable, "-m", "spacy_lsllama.cli", "tag", "-", "-m"]
    command += [str(threaded_load_pipeline), "-b", "4", "--n-process", "2"]
    env = {**cli_env(), "OMP_NUM_THREADS": "4"}  # 2 threads per worker, whatever the host
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(data, timeout=N_PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the workers too
        process.communicate()
        pytest.fail(f"--n-process 2 wrote nothing in {N_PROCESS_TIMEOUT} s: the workers hang")
    assert process.returncode == 0, stderr.decode()
    single = tag("-", "-m", threaded_load_pipeline, "-b", "4", input=data)
    for a, b in zip(parse(stdout), parse(single.stdout), strict=True):
        assert [(e["start"], e["end"], e["label"]) for e in a["ents"]] == [
            (e["start"], e["end"], e["label"]) for e in b["ents"]
        ]
        for ea, eb in zip(a["ents"], b["ents"], strict=True):
            assert ea["score"] == pytest.approx(eb["score"], abs=1e-2)  # bfloat16


# About 10 s on an idle machine (importing torch, loading the pipeline), minutes on a busy one.
N_PROCESS_TIMEOUT = 600


def test_text_field_option(tiny_pipeline):
    result = tag("-", "-m", tiny_pipeline, "--text-field", "body", input=b'{"body": "Alice"}\n')
    assert parse(result.stdout) == [
        {
            "body": "Alice",
            "ents": [{"start": 0, "end": 5, "label": "PERSON", "text": "Alice"}],
            "cats": {"POS": 0.5, "NEG": 0.5},
        }
    ]


def test_unicode_is_written_as_utf8(tiny_pipeline):
    result = tag("-", "-m", tiny_pipeline, input='{"text": "Zoë Smith 🙂"}\n'.encode())
    assert "Zoë Smith 🙂" in result.stdout


def test_a_byte_order_mark_on_the_first_line_is_ignored(tiny_pipeline):
    result = tag("-", "-m", tiny_pipeline, input=b"\xef\xbb\xbf" + jsonl(RECORDS[:1]))
    assert [record["id"] for record in parse(result.stdout)] == [1]


def test_scores_from_the_configured_extension_of_an_lsllama_pipeline(lsllama_pipeline):
    result = tag("-", "-m", lsllama_pipeline, input=b'{"text": "Merkel visited Tokyo today"}\n')
    assert result.exit_code == 0, result.stderr
    ents = parse(result.stdout)[0]["ents"]
    assert [(e["text"], e["label"]) for e in ents] == [("Merkel", "PER"), ("Tokyo", "LOC")]
    assert all(0.5 < e["score"] <= 1.0 for e in ents)


def test_spans_key_pipelines_write_their_spans_with_scores(tiny_model_dir, tmp_path):
    pipeline = lsllama_ner_pipeline(tmp_path / "spans", tiny_model_dir, spans_key="found")
    result = tag("-", "-m", pipeline, input=b'{"text": "Merkel visited Tokyo today"}\n')
    record = parse(result.stdout)[0]
    assert "ents" not in record
    spans = record["spans"]["found"]
    assert [(s["text"], s["label"]) for s in spans] == [("Merkel", "PER"), ("Tokyo", "LOC")]
    assert all(0.5 < s["score"] <= 1.0 for s in spans)
    assert record["spans"]["found"][0]["start"] == 0


@Language.component("test_span_scores", assigns=["doc.spans"])
def span_scores(doc: Doc) -> Doc:
    """Copy the entities into a span group with scores, as spancat stores them."""
    doc.spans["sc"] = SpanGroup(doc, spans=list(doc.ents), attrs={"scores": [0.5] * len(doc.ents)})
    return doc


def test_score_from_span_group(tiny_pipeline, tmp_path):
    nlp = spacy.load(tiny_pipeline)
    nlp.add_pipe("test_span_scores")
    nlp.to_disk(tmp_path / "scored")
    result = tag("-", "-m", tmp_path / "scored", input=jsonl(RECORDS[:1]))
    assert [ent["score"] for ent in parse(result.stdout)[0]["ents"]] == [0.5, 0.5]


# Bad input


def test_bad_lines_are_reported_logged_and_skipped(pipeline, tmp_path):
    lines = [json.dumps(RECORDS[0]).encode(), *BAD_LINES, json.dumps(RECORDS[1]).encode()]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    output = tmp_path / "out.jsonl"
    result = tag(source, "-m", pipeline, "-o", output)
    assert result.exit_code == 0, result.stderr
    assert [record["id"] for record in parse(output.read_bytes())] == [1, 2]
    entries = parse((tmp_path / "out.jsonl.errors.jsonl").read_bytes())
    assert [(e["line"], e["reason"]) for e in entries] == [
        (number, reason) for number, reason in enumerate(BAD_LINES.values(), start=2)
    ]
    raws = [e["raw"].encode("utf-8", "surrogateescape") for e in entries]
    assert raws == list(BAD_LINES)
    for number, reason in enumerate(BAD_LINES.values(), start=2):
        assert f"line {number}: {reason}" in result.stderr
    n = len(lines)
    assert f"{n} lines read = 2 docs written + {n - 2} skipped (2 empty)" in result.stderr


def test_overlong_lines_are_rejected(tiny_pipeline, tmp_path):
    long_text = json.dumps({"text": "Alice " * 3}).encode()
    huge_line = json.dumps({"text": "x" * 200}).encode()
    source = b"\n".join([long_text, huge_line, b'{"id": 7, "text": "Alice"}']) + b"\n"
    errors = tmp_path / "errors.jsonl"
    result = tag("-", "-m", tiny_pipeline, "--max-chars", "10", "--errors", errors, input=source)
    assert [record["id"] for record in parse(result.stdout)] == [7]
    entries = parse(errors.read_bytes())
    assert entries[0]["reason"] == "field 'text' has 18 characters, more than --max-chars 10"
    assert entries[1]["reason"] == "line is longer than 80 bytes"
    assert entries[1]["truncated"] is True
    assert entries[1]["raw"] == huge_line[:81].decode()


def test_on_error_fail_stops_after_writing_the_lines_before(tiny_pipeline, tmp_path):
    source = b"\n".join([jsonl(RECORDS[:2]), b"not json", jsonl(RECORDS[2:])])
    result = tag("-", "-m", tiny_pipeline, "--on-error", "fail", "-b", "1000", input=source)
    assert result.exit_code == 1
    assert [record["id"] for record in parse(result.stdout)] == [1, 2]
    assert "error: line 4: invalid JSON: Expecting value (column 1)" in result.stderr
    assert "Traceback" not in result.output


def test_on_error_fail_does_not_stop_at_empty_lines(tiny_pipeline):
    source = jsonl(RECORDS[:1]) + b"\n\n" + jsonl(RECORDS[1:])
    result = tag("-", "-m", tiny_pipeline, "--on-error", "fail", input=source)
    assert result.exit_code == 0, result.stderr
    assert len(parse(result.stdout)) == 3


def test_sidecar_defaults_to_the_working_directory_for_stdout(tiny_pipeline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tag("-", "-m", tiny_pipeline, input=b"oops\n")
    assert parse((tmp_path / "lsllama-errors.jsonl").read_bytes())[0]["raw"] == "oops"


def test_a_fresh_run_replaces_an_old_sidecar(tiny_pipeline, tmp_path):
    output = tmp_path / "out.jsonl"
    tag("-", "-m", tiny_pipeline, "-o", output, input=b"oops\n")
    assert (tmp_path / "out.jsonl.errors.jsonl").exists()
    tag("-", "-m", tiny_pipeline, "-o", output, input=jsonl(RECORDS))
    assert not (tmp_path / "out.jsonl.errors.jsonl").exists()


# Command line


def test_missing_model_is_a_one_line_error(tmp_path):
    result = tag("-", "--model", tmp_path / "nope", input=jsonl(RECORDS))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot load model")
    assert len(result.stderr.strip().splitlines()) == 1


def test_compile_without_an_lsllama_encoder_is_a_one_line_error(tiny_pipeline):
    result = tag("-", "--model", tiny_pipeline, "--compile", input=jsonl(RECORDS))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --compile: The pipeline has no lsllama_transformer")
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_input_file_is_a_usage_error(tiny_pipeline, tmp_path):
    result = tag(tmp_path / "missing.jsonl", "-m", tiny_pipeline)
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_resume_needs_an_output_file(tiny_pipeline):
    result = tag("-", "-m", tiny_pipeline, "--resume", input=jsonl(RECORDS))
    assert result.exit_code == 2
    assert "--resume needs --output" in result.stderr


def test_output_must_not_be_the_input(tiny_pipeline, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(RECORDS))
    result = tag(source, "-m", tiny_pipeline, "-o", tmp_path / "." / "in.jsonl")
    assert result.exit_code == 2
    assert source.read_bytes() == jsonl(RECORDS)


def test_help_shows_an_example():
    result = CliRunner().invoke(app, ["tag", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert "lsllama tag docs.jsonl --model" in result.stdout
    for option in ("--model", "--output", "--errors", "--on-error", "--resume", "--max-chars"):
        assert option in result.stdout


def test_app_help_lists_the_commands():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for command in ("base-model", "convert", "evaluate", "tag"):
        assert command in result.stdout


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"lsllama {__version__}"


# What the user sees on stderr


def test_plain_summary_when_stderr_is_not_a_terminal(tiny_pipeline):
    result = tag("-", "-m", tiny_pipeline, input=jsonl(RECORDS) + b"\n")
    lines = result.stderr.splitlines()
    assert lines[-2].startswith("lsllama tag: 4 lines read = 3 docs written + 1 skipped (1 empty)")
    assert lines[-1] == "entities: 5 (PERSON 3, ORG 2)"


def test_progress_and_table_on_a_terminal_keep_stdout_clean(tiny_pipeline):
    env = {"TTY_COMPATIBLE": "1", "COLUMNS": "120"}
    result = tag("-", "-m", tiny_pipeline, input=jsonl(RECORDS), env=env)
    assert "Lines read" in result.stderr
    assert "Throughput" in result.stderr
    assert [record["id"] for record in parse(result.stdout)] == [1, 2, 3]


def test_show_prints_documents_to_stderr(tiny_pipeline):
    result = tag("-", "-m", tiny_pipeline, "--show", input=jsonl(RECORDS[:1]))
    assert "1: Alice PERSON joined Acme Labs ORG." in result.stderr
    assert len(parse(result.stdout)) == 1


# Resume


def expected_run(pipeline: Path, tmp_path: Path, data: bytes, *args: str) -> tuple[bytes, bytes]:
    source = tmp_path / "in.jsonl"
    source.write_bytes(data)
    full = tmp_path / "full.jsonl"
    assert tag(source, "-m", pipeline, "-o", full, *args).exit_code == 0
    errors = tmp_path / "full.jsonl.errors.jsonl"
    return full.read_bytes(), errors.read_bytes() if errors.exists() else b""


@pytest.mark.parametrize("lines_done", [0, 1, 5, 8, 12, 29])
@pytest.mark.parametrize("extra", [b"", b'{"id": 3, "te'])
def test_resume_finishes_exactly_like_an_uninterrupted_run(
    tiny_pipeline, tmp_path, lines_done, extra
):
    """Leave the state a kill leaves: a checkpoint after some lines, then output and sidecar
    bytes written after it (a partial line too); resume must give the uninterrupted files."""
    data = mixed_input(40, 4)
    output_full, errors_full = expected_run(tiny_pipeline, tmp_path, data, "-b", "4")
    output = tmp_path / "out.jsonl"
    errors = tmp_path / "out.jsonl.errors.jsonl"
    head = tmp_path / "head.jsonl"
    head.write_bytes(b"".join(data.splitlines(keepends=True)[:lines_done]))
    assert tag(head, "-m", tiny_pipeline, "-o", output, "-b", "4").exit_code == 0
    done_output, done_errors = output.read_bytes(), errors.read_bytes() if errors.exists() else b""
    output.write_bytes(done_output + output_full[len(done_output) :][:100] + extra)
    errors.write_bytes(done_errors + errors_full[len(done_errors) :][:50])
    result = tag(tmp_path / "in.jsonl", "-m", tiny_pipeline, "-o", output, "-b", "4", "--resume")
    assert result.exit_code == 0, result.stderr
    assert output.read_bytes() == output_full
    assert errors.read_bytes() == errors_full
    assert "40 lines read = 30 docs written + 10 skipped" in result.stderr  # the whole file


def test_resume_refuses_a_different_input(tiny_pipeline, tmp_path):
    output = tmp_path / "out.jsonl"
    tag("-", "-m", tiny_pipeline, "-o", output, "-b", "1", input=jsonl(RECORDS[:2]))
    other = [{"text": "Something else"}, {"text": "Entirely"}, {"text": "More"}]
    result = tag("-", "-m", tiny_pipeline, "-o", output, "-b", "1", "--resume", input=jsonl(other))
    assert result.exit_code == 1
    assert "cannot resume: the first 2 lines of the input differ" in result.stderr


def test_resume_without_an_output_file_starts_afresh(tiny_pipeline, tmp_path):
    output = tmp_path / "out.jsonl"
    result = tag("-", "-m", tiny_pipeline, "-o", output, "--resume", input=jsonl(RECORDS))
    assert result.exit_code == 0
    assert len(parse(output.read_bytes())) == 3


# A real process in real pipes


def test_pipe_from_stdin_to_stdout_goes_on_after_a_bad_line(tiny_pipeline, tmp_path):
    data = jsonl(RECORDS[:2]) + b"{broken\n" + jsonl(RECORDS[2:])
    result = run_cli("-", "-m", tiny_pipeline, input=data, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert [record["id"] for record in parse(result.stdout)] == [1, 2, 3]
    stderr = result.stderr.decode()
    assert "skipped line 3: invalid JSON: Expecting property name" in stderr
    assert "4 lines read = 3 docs written + 1 skipped (0 empty)" in stderr
    assert "Traceback" not in stderr


def test_closing_the_pipe_early_ends_quietly(tiny_pipeline, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(mixed_input(20_000, bad_every=10**9))
    command = [sys.executable, "-m", "spacy_lsllama.cli", "tag", str(source), "-m", tiny_pipeline]
    tagger = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), cwd=tmp_path
    )
    head = subprocess.run(["head", "-n", "3"], stdin=tagger.stdout, capture_output=True)
    tagger.stdout.close()
    stderr = tagger.communicate(timeout=300)[1].decode()
    assert [record["id"] for record in parse(head.stdout)] == [0, 1, 2]
    assert tagger.returncode == 141
    assert stderr == ""


def interrupt(command: list[str], output: Path, at_size: int, sig: int) -> str:
    """Start ``command``, send it ``sig`` once ``output`` has ``at_size`` bytes; its stderr."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env=cli_env())
    while not output.exists() or output.stat().st_size < at_size:
        assert process.poll() is None, "finished before it could be interrupted"
        time.sleep(0.05)
    process.send_signal(sig)
    stderr = process.communicate(timeout=60)[1].decode()
    assert process.returncode == (130 if sig == signal.SIGINT else -sig)
    return stderr


def test_resume_after_real_interruptions(tiny_pipeline, tmp_path):
    """Kill a run, resume it, stop that with Ctrl-C, resume again: the same as one run."""
    output_full, errors_full = expected_run(tiny_pipeline, tmp_path, mixed_input(12_000, 97))
    output = tmp_path / "out.jsonl"
    args = [tmp_path / "in.jsonl", "-m", tiny_pipeline, "-o", output]
    command = [sys.executable, "-m", "spacy_lsllama.cli", "tag", *map(str, args)]
    interrupt(command, output, 100_000, signal.SIGKILL)
    stderr = interrupt([*command, "--resume"], output, 600_000, signal.SIGINT)
    assert "run again with --resume" in stderr
    assert "Traceback" not in stderr
    assert output.read_bytes().endswith(b"\n")
    assert output.stat().st_size < len(output_full)
    result = run_cli(*args, "--resume", timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert output.read_bytes() == output_full
    assert (tmp_path / "out.jsonl.errors.jsonl").read_bytes() == errors_full


# Memory


def peak_rss_kib(source: Path, model: Path, output: Path) -> tuple[int, str]:
    """Peak resident memory of one ``lsllama tag`` process, and its stderr."""
    measure = (
        "import resource, subprocess, sys; "
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "print(p.stderr.decode(), file=sys.stderr)"
    )
    command = [sys.executable, "-c", measure, sys.executable, "-m", "spacy_lsllama.cli"]
    command += ["tag", str(source), "-m", str(model), "-o", str(output)]
    result = subprocess.run(command, capture_output=True, env=cli_env(), check=True)
    return int(result.stdout), result.stderr.decode()


@pytest.mark.slow
def test_memory_does_not_grow_with_the_input(tiny_pipeline, tmp_path):
    """100,000 lines with new words in each take hardly more memory than 10,000.

    The baseline (Python, spaCy, torch) is about 500 MiB; holding the documents would add
    about 6 MiB per 1,000 of them, holding just the output records about 1 MiB.
    """
    peaks = {}
    for n in (10_000, 100_000):
        source = tmp_path / f"{n}.jsonl"
        with source.open("w") as file:
            for i in range(n):
                text = f"Alice met Zoë Smith at Acme Labs about order X{i * 7919} on day {i}."
                file.write(json.dumps({"id": i, "text": text}) + "\n")
        peaks[n], stderr = peak_rss_kib(source, tiny_pipeline, tmp_path / f"{n}.out.jsonl")
        print(f"{n:,} lines: peak RSS {peaks[n] / 1024:.0f} MiB; {stderr.strip()}")
    assert peaks[100_000] / peaks[10_000] < 1.5
    assert peaks[100_000] - peaks[10_000] < 64 * 1024
