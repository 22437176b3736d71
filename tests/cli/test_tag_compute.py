"""How a run computed (dtype, threads, ...): recorded in the run header, checked on --resume."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from spacy_lsllama.cli.app import app
from spacy_lsllama.tagging.compute import continue_segments, cpu_model, merge_facts
from spacy_lsllama.tagging.errors import CommandError

FACTS = {"device": "cpu", "dtype": "float32", "threads": 2, "torch": "2.13.0", "cpu": "X"}
TEXTS = [f"Obama visited Paris on day {i}." for i in range(12)]


def test_a_fresh_run_is_one_segment_from_line_1():
    assert continue_segments([], FACTS, 1, None) == ([{"from line": 1, **FACTS}], [])


def test_the_same_facts_continue_the_segment():
    segments = [{"from line": 1, **FACTS}]
    assert continue_segments(segments, dict(FACTS), 5, None) == (segments, [])


def test_other_threads_warn_with_both_counts_and_start_a_segment():
    segments = [{"from line": 1, **FACTS}]
    now = {**FACTS, "threads": 1}
    kept, warnings = continue_segments(segments, now, 1001, Path("out.jsonl"))
    assert kept == [*segments, {"from line": 1001, **now}]
    assert warnings == [
        "out.jsonl: lines 1-1,000 were computed with threads 2; this run has threads 1, so a "
        "few records may differ from an uninterrupted run (OMP_NUM_THREADS=2, or "
        "--cpus-per-actor 2 with --engine ray, match it)"
    ]


def test_another_dtype_is_refused():
    segments = [{"from line": 1, **FACTS}, {"from line": 7, **FACTS, "threads": 1}]
    now = {**FACTS, "threads": 1, "dtype": "bfloat16"}
    with pytest.raises(CommandError) as err:
        continue_segments(segments, now, 9, Path("out.jsonl"))
    assert str(err.value).startswith(
        "cannot resume out.jsonl: lines 7-8 were computed with dtype float32, now bfloat16;"
    )


def test_segments_after_the_resume_point_are_dropped():
    segments = [{"from line": 1, **FACTS}, {"from line": 5, **FACTS, "threads": 1}]
    assert continue_segments(segments, FACTS, 5, None) == (segments[:1], [])


def test_merged_facts_list_the_values_workers_disagree_on():
    merged = merge_facts([FACTS, {**FACTS, "threads": 1}, FACTS])
    assert merged == {**FACTS, "threads": [1, 2]}


def test_cpu_model_reads_the_first_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n\nmodel name\t: B\n")
    assert cpu_model(cpuinfo) == "Some CPU @ 2GHz"
    assert cpu_model(tmp_path / "missing") is None


# The command


def tag(*args: str | Path) -> object:
    result = CliRunner().invoke(app, ["tag", *map(str, args)], env={"TTY_COMPATIBLE": "0"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def files(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": text}) + "\n" for text in TEXTS))
    head = tmp_path / "head.jsonl"
    head.write_text("".join(source.read_text().splitlines(keepends=True)[:8]))
    return source, head, tmp_path / "out.jsonl"


def header_of(output: Path) -> dict:
    return json.loads(output.with_name(output.name + ".run.json").read_text())


def rewrite_compute(output: Path, **changes: object) -> None:
    path = output.with_name(output.name + ".run.json")
    header = json.loads(path.read_text())
    header["compute"][0].update(changes)
    path.write_text(json.dumps(header))


def test_the_header_records_dtype_threads_and_torch(lsllama_pipeline, files):
    source, _, output = files
    assert tag(source, "-m", lsllama_pipeline, "-o", output, "-b", "4").exit_code == 0
    (segment,) = header_of(output)["compute"]
    assert segment == {
        "from line": 1,
        "device": "cpu",
        "dtype": "float32",
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
    }


def test_a_resume_with_other_threads_warns_and_records_where_they_changed(lsllama_pipeline, files):
    source, head, output = files
    assert tag(source, "-m", lsllama_pipeline, "-o", output, "-b", "4").exit_code == 0
    full = output.read_bytes()
    assert tag(head, "-m", lsllama_pipeline, "-o", output, "-b", "4").exit_code == 0
    rewrite_compute(output, threads=99)
    result = tag(source, "-m", lsllama_pipeline, "-o", output, "-b", "4", "--resume")
    assert result.exit_code == 0, result.stderr
    threads = torch.get_num_threads()
    assert (
        f"warning: {output}: lines 1-8 were computed with threads 99; this run has threads "
        f"{threads}" in " ".join(result.stderr.split())
    )
    assert output.read_bytes() == full  # same weights, same threads here: same bytes
    segments = header_of(output)["compute"]
    assert [(s["from line"], s["threads"]) for s in segments] == [(1, 99), (9, threads)]


def test_a_resume_in_another_dtype_is_refused_and_leaves_the_files(lsllama_pipeline, files):
    source, head, output = files
    assert tag(head, "-m", lsllama_pipeline, "-o", output, "-b", "4").exit_code == 0
    rewrite_compute(output, dtype="bfloat16")
    before = output.read_bytes(), header_of(output)
    result = tag(source, "-m", lsllama_pipeline, "-o", output, "-b", "4", "--resume")
    assert result.exit_code == 1
    assert (
        f"error: cannot resume {output}: lines 1-8 were computed with dtype bfloat16, now "
        "float32;" in " ".join(result.stderr.split())
    )
    assert (output.read_bytes(), header_of(output)) == before
