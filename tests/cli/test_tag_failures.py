"""``lsllama tag`` against failures seen in use: each test reproduces one, on the fast
rule pipeline and, where the model matters, on an LS-LLaMA pipeline too."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_tag import REPO, cli_env, interrupt, jsonl, mixed_input, parse, run_cli, tag

from spacy_lsllama.testing import default_sigint

RECORDS = [{"id": i, "text": f"Merkel visited Tokyo with Alice, day {i}"} for i in range(6)]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# 1, 2: data loss


def test_errors_naming_the_input_is_refused(tiny_pipeline, tmp_path):
    source = write(tmp_path / "in.jsonl", jsonl(RECORDS) + b"oops\n")
    result = tag(source, "-m", tiny_pipeline, "-o", tmp_path / "out.jsonl", "--errors", source)
    assert result.exit_code == 2
    assert "--errors is the same file as the input" in result.stderr
    assert source.read_bytes() == jsonl(RECORDS) + b"oops\n"


def test_errors_naming_the_output_is_refused(tiny_pipeline, tmp_path):
    output = tmp_path / "out.jsonl"
    result = tag("-", "-m", tiny_pipeline, "-o", output, "--errors", output, input=b"oops\n")
    assert result.exit_code == 2
    assert "--errors names the same file as --output" in result.stderr


def test_an_output_hard_linked_to_the_input_is_refused(tiny_pipeline, tmp_path):
    source = write(tmp_path / "in.jsonl", jsonl(RECORDS))
    os.link(source, tmp_path / "out.jsonl")
    result = tag(source, "-m", tiny_pipeline, "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 2
    assert "--output is the same file as the input" in result.stderr
    assert source.read_bytes() == jsonl(RECORDS)


def test_standard_input_redirected_from_the_output_is_refused(tiny_pipeline, tmp_path):
    output = write(tmp_path / "s.jsonl", jsonl(RECORDS))
    with output.open("rb") as stdin:
        result = run_cli("-", "-m", tiny_pipeline, "-o", output, stdin=stdin, timeout=120)
    assert result.returncode == 2, result.stderr.decode()
    assert output.read_bytes() == jsonl(RECORDS)


def test_standard_output_appending_to_the_input_is_refused(tiny_pipeline, tmp_path):
    source = write(tmp_path / "in.jsonl", jsonl(RECORDS))
    with source.open("ab") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "spacy_lsllama.cli", "tag", str(source), "-m", tiny_pipeline],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=cli_env(),
            timeout=120,
        )
    assert result.returncode == 2
    assert "standard output is the same file as the input" in result.stderr.decode()
    assert source.read_bytes() == jsonl(RECORDS)


# 3: one line never ends the run


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"text": "x", "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
        (b'{"text": "x", "n": ' + b"9" * 5000 + b"}", None),
        (b'{"text": "x", "n": NaN}', "invalid JSON: NaN is not a JSON value"),
        (b'{"text": "x", "n": -Infinity}', "invalid JSON: -Infinity is not a JSON value"),
    ],
)
def test_a_line_that_breaks_the_decoder_is_that_lines_error(pipeline, tmp_path, bad, reason):
    source = jsonl(RECORDS[:2]) + bad + b"\n" + jsonl(RECORDS[2:])
    errors = tmp_path / "errors.jsonl"
    result = tag("-", "-m", pipeline, "--errors", errors, input=source)
    assert result.exit_code == 0, result.stderr
    out = result.stdout.encode().splitlines()
    if reason is None:  # 5,000 digits are valid JSON: written back, every digit
        assert len(out) == 7 and b"9" * 5000 + b"," in out[2]
        return
    assert [record["id"] for record in parse(result.stdout)] == list(range(6))
    entry = parse(errors.read_bytes())[0]
    assert entry["line"] == 3 and reason in entry["reason"]


# 4: valid JSON out, values kept


def test_untouched_fields_pass_through_exactly(pipeline):
    line = (
        b'{"pi": 3.141592653589793238, "big": 1e400, "n": 12345678901234567890123, '
        b'"esc": "\\u00e9\\n", "nested": {"a": [1.10, -0.0]}, "text": "Merkel visited Tokyo"}'
    )
    result = tag("-", "-m", pipeline, input=line + b"\n")
    out = result.stdout.encode()
    assert out.startswith(line[:-1] + b", ")
    record = json.loads(out, parse_constant=lambda name: pytest.fail(f"wrote {name}"))
    assert record["text"] == "Merkel visited Tokyo" and "ents" in record


def test_existing_ents_and_cats_are_replaced_once_with_a_note(tiny_pipeline):
    line = b'{"ents": "mine", "text": "Alice", "cats": 1, "ents": "again"}\n'
    result = tag("-", "-m", tiny_pipeline, input=line + line)
    out = result.stdout.encode().splitlines()
    assert out[0].startswith(b'{"ents": [{"start": 0, "end": 5, "label": "PERSON"')
    assert out[0].count(b'"ents"') == 1 and out[0].count(b'"cats"') == 1
    assert result.stderr.count("note: line 1 already has 'ents'") == 1
    assert result.stderr.count("already has 'cats'") == 1


def test_a_duplicated_text_field_is_a_bad_line(tiny_pipeline, tmp_path):
    errors = tmp_path / "e.jsonl"
    result = tag(
        "-", "-m", tiny_pipeline, "--errors", errors, input=b'{"text": "a", "text": "b"}\n'
    )
    assert result.stdout == ""
    assert parse(errors.read_bytes())[0]["reason"] == "field 'text' occurs 2 times"


# 5, 7: resume refuses what it cannot continue


def interrupted_output(pipeline: Path, tmp_path: Path, data: bytes, *args: str) -> Path:
    """An output as a run over the first half of ``data`` leaves it; the full input in in.jsonl."""
    write(tmp_path / "in.jsonl", data)
    half = write(tmp_path / "half.jsonl", b"".join(data.splitlines(keepends=True)[:5]))
    output = tmp_path / "out.jsonl"
    assert tag(half, "-m", pipeline, "-o", output, *args).exit_code == 0
    return output


def test_resume_with_another_model_is_refused(tiny_pipeline, lsllama_pipeline, tmp_path):
    output = interrupted_output(tiny_pipeline, tmp_path, jsonl(RECORDS))
    before = output.read_bytes()
    result = tag(tmp_path / "in.jsonl", "-m", lsllama_pipeline, "-o", output, "--resume")
    assert result.exit_code == 1
    assert "cannot resume" in result.stderr and "model was" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert output.read_bytes() == before


def test_resume_with_other_options_is_refused(tiny_pipeline, tmp_path):
    output = interrupted_output(tiny_pipeline, tmp_path, jsonl(RECORDS))
    result = tag(tmp_path / "in.jsonl", "-m", tiny_pipeline, "-o", output, "--resume", "-b", "7")
    assert result.exit_code == 1
    assert "--batch-size was 64, now 7" in result.stderr


def test_resume_with_the_sidecar_missing_is_refused(tiny_pipeline, tmp_path):
    data = mixed_input(10, bad_every=2)
    output = interrupted_output(tiny_pipeline, tmp_path, data, "-b", "2")
    (tmp_path / "out.jsonl.errors.jsonl").unlink()
    result = tag(tmp_path / "in.jsonl", "-m", tiny_pipeline, "-o", output, "--resume", "-b", "2")
    assert result.exit_code == 1
    assert "the sidecar" in result.stderr and "is missing" in result.stderr


def test_resume_of_an_output_this_tool_did_not_write_is_a_one_line_error(tiny_pipeline, tmp_path):
    write(tmp_path / "in.jsonl", jsonl(RECORDS))
    output = write(tmp_path / "out.jsonl", b"id,text\n1,hello\n")
    result = tag(tmp_path / "in.jsonl", "-m", tiny_pipeline, "-o", output, "--resume")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot resume:") and "no run header" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert output.read_bytes() == b"id,text\n1,hello\n"


@pytest.mark.parametrize("damage", ["header", "sidecar"])
def test_resume_with_a_corrupt_header_or_sidecar_is_a_one_line_error(
    tiny_pipeline, tmp_path, damage
):
    output = interrupted_output(tiny_pipeline, tmp_path, mixed_input(10, bad_every=2), "-b", "2")
    if damage == "header":
        write(tmp_path / "out.jsonl.run.json", b'{"format": "lsllama-tag-run/1", "checkp')
    else:
        sidecar = tmp_path / "out.jsonl.errors.jsonl"
        write(sidecar, sidecar.read_bytes()[:-10])
    result = tag(tmp_path / "in.jsonl", "-m", tiny_pipeline, "-o", output, "--resume", "-b", "2")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot resume")
    assert len(result.stderr.strip().splitlines()) == 1


# 6: a resumed LS-LLaMA output is byte-identical


def test_resumed_lsllama_output_is_byte_identical(lsllama_pipeline, tmp_path):
    """LS-LLaMA scores depend on the batch (windows are packed per batch): a run stopped
    after line 13 and resumed must still tag lines 1-40 in one batch of 64, as one run does."""
    texts = [("Obama visited Paris today " * (i % 7 + 1)) + f"and Merkel {i}" for i in range(40)]
    data = jsonl([{"id": i, "text": text} for i, text in enumerate(texts)])
    full = tmp_path / "full.jsonl"
    source = write(tmp_path / "in.jsonl", data)
    assert tag(source, "-m", lsllama_pipeline, "-o", full).exit_code == 0
    head = write(tmp_path / "head.jsonl", b"".join(data.splitlines(keepends=True)[:13]))
    output = tmp_path / "out.jsonl"
    assert tag(head, "-m", lsllama_pipeline, "-o", output).exit_code == 0
    result = tag(source, "-m", lsllama_pipeline, "-o", output, "--resume")
    assert result.exit_code == 0, result.stderr
    assert output.read_bytes() == full.read_bytes()


def varied_input(n: int, bad_every: int) -> bytes:
    """Records of varied lengths (LS-LLaMA packs them differently per batch), some bad."""
    lines = []
    for i in range(n):
        text = "Obama visited Paris today and " * (i % 7 + 1) + f"Merkel {i}"
        lines.append(
            b"{oops" if i % bad_every == 0 else json.dumps({"id": i, "text": text}).encode()
        )
    return b"\n".join(lines) + b"\n"


def test_lsllama_resume_after_real_interruptions(lsllama_pipeline, tmp_path):
    """Kill a run of the LS-LLaMA pipeline, resume it, stop that with Ctrl-C, resume again."""
    source = write(tmp_path / "in.jsonl", varied_input(1_200, 53))
    full = tmp_path / "full.jsonl"
    args = ["-m", str(lsllama_pipeline)]
    assert run_cli(source, *args, "-o", full, timeout=600).returncode == 0
    output = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "spacy_lsllama.cli", "tag", str(source), *args, "-o"]
    interrupt([*command, str(output)], output, 50_000, signal.SIGKILL)
    stderr = interrupt([*command, str(output), "--resume"], output, 150_000, signal.SIGINT)
    assert "run again with --resume" in stderr
    result = run_cli(source, *args, "-o", output, "--resume", timeout=600)
    assert result.returncode == 0, result.stderr.decode()
    assert output.read_bytes() == full.read_bytes()
    sidecar = (tmp_path / "out.jsonl.errors.jsonl").read_bytes()
    assert sidecar == (tmp_path / "full.jsonl.errors.jsonl").read_bytes()


# 8: terminal safety


def test_show_escapes_control_characters(tiny_pipeline):
    text = "Alice \u001b]0;TITLE\u0007 and \u001b[2J \u202e"
    result = tag("-", "-m", tiny_pipeline, "--show", input=jsonl([{"text": text}]))
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b]0;TITLE\\x07 and \\x1b[2J \\u202e" in result.stderr
    assert json.loads(result.stdout)["text"] == text  # the output keeps the text as it is


# 9: streams and directories


def test_fifo_and_dev_stdin_inputs_are_read(tiny_pipeline, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat > {fifo}"], stdin=subprocess.PIPE)
    writer.stdin.write(jsonl(RECORDS))
    writer.stdin.close()
    result = run_cli(fifo, "-m", tiny_pipeline, timeout=120)
    writer.wait(timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert len(parse(result.stdout)) == 6
    result = run_cli("/dev/stdin", "-m", tiny_pipeline, input=jsonl(RECORDS), timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert len(parse(result.stdout)) == 6


def test_a_directory_input_is_named_as_a_directory(tiny_pipeline, tmp_path):
    result = tag(tmp_path, "-m", tiny_pipeline, env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "is a directory" in result.stderr


# 10: signals and closed pipes


# Moments of start-up: Typer parsing options, torch importing, the pipeline loading (which
# moment is which depends on the machine). Libraries turned a Ctrl-C there into an ImportError
# traceback, ignored it, or made Python end by SIGINT instead of exit 130.
@pytest.mark.parametrize("seconds", [0.5, 1.5, 2.5])
def test_ctrl_c_during_start_up_is_one_line(lsllama_pipeline, tmp_path, seconds):
    command = [sys.executable, "-m", "spacy_lsllama.cli", "tag", "-", "-m", str(lsllama_pipeline)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        cwd=tmp_path,
        preexec_fn=default_sigint,  # a background shell job would inherit it ignored
    )
    time.sleep(seconds)
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(jsonl(RECORDS), timeout=120)[1].decode()
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Interrupted" in stderr


def test_closed_standard_error_exits_141(tiny_pipeline, tmp_path):
    data = b"oops\n" * 2000 + jsonl(RECORDS)
    command = [sys.executable, "-m", "spacy_lsllama.cli", "tag", "-", "-m", str(tiny_pipeline)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=cli_env(),
        cwd=tmp_path,
    )
    process.stderr.close()
    process.stdin.write(data)
    process.stdin.close()
    assert process.wait(timeout=120) == 141


# 11: a fast --help


def test_help_and_version_do_not_import_torch_or_spacy():
    code = (
        "import sys; from spacy_lsllama.cli.app import app\n"
        "for args in (['--help'], ['--version'], ['tag', '--help']):\n"
        "    try: app(args, prog_name='lsllama')\n"
        "    except SystemExit: pass\n"
        "print(sorted({'torch', 'spacy', 'transformers'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=cli_env(), cwd=REPO
    )
    assert result.stdout.decode().strip().splitlines()[-1] == "[]"


# 12: smaller


def test_output_to_dev_null_puts_the_sidecar_in_the_working_directory(
    tiny_pipeline, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = tag("-", "-m", tiny_pipeline, "-o", "/dev/null", input=b"oops\n")
    assert result.exit_code == 0, result.stderr
    assert not Path("/dev/null.errors.jsonl").exists()
    assert parse((tmp_path / "lsllama-errors.jsonl").read_bytes())[0]["raw"] == "oops"


def test_an_unwritable_sidecar_is_named_as_the_sidecar(tiny_pipeline, tmp_path):
    not_a_dir = write(tmp_path / "file", b"")
    result = tag(
        "-", "-m", tiny_pipeline, "-o", tmp_path / "out.jsonl", "--errors", not_a_dir / "e.jsonl"
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot write --errors {not_a_dir / 'e.jsonl'}")


def test_short_help_and_flags_without_a_value(tiny_pipeline):
    from typer.testing import CliRunner

    from spacy_lsllama.cli.app import app

    result = CliRunner().invoke(app, ["tag", "-h"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout
    for flag in ("--resume", "--show", "--compile"):
        assert flag in result.stdout
