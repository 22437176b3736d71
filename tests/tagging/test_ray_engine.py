"""The Ray engine and tag_dataset, on one small local Ray cluster shared by the module.

Everything is compared with the local engine's output: the Ray engine's contract is to write
the very same files.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spacy_lsllama.cli.app import app
from spacy_lsllama.tagging.errors import CommandError
from spacy_lsllama.tagging.lines import Line, LineError, Record
from spacy_lsllama.tagging.ray_engine import RayEngine, RaySettings, _outcomes, check_reachable
from spacy_lsllama.testing import (
    SlowStartTaggerActor,
    UnevenTaggerActor,
    default_sigint,
    lsllama_ner_pipeline,
    rule_pipeline,
)

REPO = Path(__file__).resolve().parents[2]
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "TTY_COMPATIBLE": "0"}


@pytest.fixture(scope="module")
def cluster():
    """A local cluster of 2 CPUs with a small object store, no dashboard, no usage stats."""
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[ray]"')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(
            num_cpus=2,
            object_store_memory=100 * 1024**2,
            include_dashboard=False,
            log_to_driver=False,
        )
        yield ray
        ray.shutdown()


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    return rule_pipeline(tmp_path_factory.mktemp("pipeline") / "rules")


@pytest.fixture(scope="module")
def lsllama(tmp_path_factory, tiny_model_dir):
    return lsllama_ner_pipeline(tmp_path_factory.mktemp("lsllama") / "ner", tiny_model_dir)


def tag(*args, input=None):
    result = CliRunner().invoke(app, ["tag", *map(str, args)], input=input, env=RAY_ENV)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def corpus(n: int, bad_every: int = 9) -> bytes:
    """``n`` lines: records with fields of every kind, a bad or empty line every few lines."""
    lines = []
    for i in range(n):
        if i % bad_every == bad_every - 1:
            lines.append([b"not json", b"", b'{"id": 9}', b'{"text": 42}'][i // bad_every % 4])
        else:
            text = f"Obama visited Tokyo, Alice met Zoë Smith at Acme Labs, day {i}."
            line = {"id": i, "text": text, "big": 2**70, "when": "2024-01-02", "x": None}
            lines.append(json.dumps(line, ensure_ascii=False).encode())
    return b"\n".join(lines) + b"\n"


def run_both(pipeline, tmp_path, data, *ray_args, batch="8"):
    """Tag ``data`` locally and with Ray; both results and their files."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(data)
    files = {}
    for name, args in (("local", ()), ("ray", ("--engine", "ray", *ray_args))):
        output = tmp_path / f"{name}.jsonl"
        result = tag(source, "-m", pipeline, "-o", output, "-b", batch, *args)
        assert result.exit_code == 0, result.stderr
        errors = tmp_path / f"{name}.jsonl.errors.jsonl"
        files[name] = (result, output.read_bytes(), errors.read_bytes() if errors.exists() else b"")
    return files["local"], files["ray"]


def test_ray_output_and_sidecar_equal_local_byte_for_byte(cluster, rules, tmp_path):
    local, ray = run_both(rules, tmp_path, corpus(60), "--actors", "2")
    assert ray[1] == local[1]
    assert ray[2] == local[2]  # the bad lines, with their line numbers and reasons
    assert b'"big": 1180591620717411303424, "when": "2024-01-02"' in ray[1]
    summary = "60 lines read = 54 docs written + 6 skipped"
    assert summary in local[0].stderr and summary in ray[0].stderr


def test_lsllama_entities_equal_local_with_scores_within_1e_5(cluster, lsllama, tmp_path):
    local, ray = run_both(lsllama, tmp_path, corpus(40), "--actors", "2")
    local_records = [json.loads(line) for line in local[1].splitlines()]
    ray_records = [json.loads(line) for line in ray[1].splitlines()]
    assert len(ray_records) == len(local_records) == 36
    assert any(record["ents"] for record in local_records)
    for mine, theirs in zip(ray_records, local_records):
        assert mine.keys() == theirs.keys()
        assert [{**e, "score": 0} for e in mine["ents"]] == [
            {**e, "score": 0} for e in theirs["ents"]
        ]
        for a, b in zip(mine["ents"], theirs["ents"]):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
    assert ray[2] == local[2]


def test_order_is_kept_when_batches_finish_out_of_order(cluster, rules, tmp_path, monkeypatch):
    """Every other batch is slow on two actors: later batches finish first, yet the output
    is in input order."""
    monkeypatch.setattr(RayEngine, "actor_class", UnevenTaggerActor)
    local, ray = run_both(rules, tmp_path, corpus(48), "--actors", "2", batch="4")
    assert ray[1] == local[1]
    ids = [json.loads(line)["id"] for line in ray[1].splitlines()]
    assert ids == sorted(ids)


def test_on_error_fail_stops_at_the_first_bad_line(cluster, rules, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(corpus(20, bad_every=12))
    output = tmp_path / "out.jsonl"
    result = tag(source, "-m", rules, "-o", output, "--engine", "ray", "--on-error", "fail")
    assert result.exit_code == 1
    assert "line 12: invalid JSON" in result.stderr
    assert len(output.read_bytes().splitlines()) == 11


@pytest.mark.parametrize("first,then", [("local", "ray"), ("ray", "local")])
def test_an_output_started_by_one_engine_is_finished_by_the_other(
    cluster, rules, tmp_path, first, then
):
    data = corpus(50)
    local, _ = run_both(rules, tmp_path, data)
    engine = {"local": (), "ray": ("--engine", "ray")}
    head = tmp_path / "head.jsonl"
    head.write_bytes(b"".join(data.splitlines(keepends=True)[:21]))
    output = tmp_path / "out.jsonl"
    assert tag(head, "-m", rules, "-o", output, "-b", "8", *engine[first]).exit_code == 0
    args = (tmp_path / "in.jsonl", "-m", rules, "-o", output, "-b", "8", "--resume")
    result = tag(*args, *engine[then])
    assert result.exit_code == 0, result.stderr
    assert output.read_bytes() == local[1]
    assert (tmp_path / "out.jsonl.errors.jsonl").read_bytes() == local[2]


def test_gpus_on_a_cpu_cluster_fail_at_once_with_what_the_cluster_has(cluster, rules, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(corpus(5))
    started = time.perf_counter()
    result = tag(source, "-m", rules, "--engine", "ray", "--gpus-per-actor", "1")
    assert time.perf_counter() - started < 30
    assert result.exit_code == 1
    assert "--gpus-per-actor 1 x --actors 1 needs 1 GPUs; the Ray cluster has 0" in result.stderr
    assert result.stdout == ""


def test_actors_the_cluster_cannot_place_fail_after_the_placement_limit(
    cluster, rules, monkeypatch
):
    """The cluster has the CPUs in total but they are taken: stop, do not wait forever."""
    monkeypatch.setattr("spacy_lsllama.tagging.ray_engine.PLACEMENT_SECONDS", 2.0)

    @cluster.remote(num_cpus=2)
    class Hog:
        def ready(self):
            return True

    hog = Hog.remote()
    cluster.get(hog.ready.remote())
    try:
        with pytest.raises(
            CommandError, match=r"could not place 1 x \(1 CPU, 0 GPU\) in 2 s; .* 0 CPU"
        ):
            with RayEngine(RaySettings(), str(rules), 1000):
                pass
    finally:
        cluster.kill(hog)
        _wait_for_free_cpus(cluster, 2)


def _wait_for_free_cpus(cluster, cpus: float, seconds: float = 60.0) -> None:
    """Until the CPUs of killed actors are back (Ray frees them a moment after `kill`)."""
    deadline = time.monotonic() + seconds
    while cluster.available_resources().get("CPU", 0.0) < cpus:
        assert time.monotonic() < deadline, f"the cluster's {cpus:g} CPUs never came back"
        time.sleep(0.1)


def test_actors_slow_to_start_are_waited_for_when_the_cluster_has_room(cluster, rules, monkeypatch):
    """On a busy machine a worker process can take longer to start than the placement limit;
    the cluster placed it, so that is not a placement failure (a false one, before)."""
    monkeypatch.setattr("spacy_lsllama.tagging.ray_engine.PLACEMENT_SECONDS", 1.0)
    monkeypatch.setattr(RayEngine, "actor_class", SlowStartTaggerActor)
    with RayEngine(RaySettings(actors=2), str(rules), 1000) as engine:
        assert len(engine.actors) == 2
    _wait_for_free_cpus(cluster, 2)  # the first engine's placement group is released lazily
    monkeypatch.setattr("spacy_lsllama.tagging.ray_engine.PLACEMENT_SECONDS", 30.0)
    monkeypatch.setattr("spacy_lsllama.tagging.ray_engine.STARTUP_SECONDS", 1.0)
    with pytest.raises(CommandError, match=r"1 of 1 Ray actors did not start in 1 s, though "):
        with RayEngine(RaySettings(), str(rules), 1000):
            pass
    _wait_for_free_cpus(cluster, 2)  # the placement group is gone with the engine


def test_an_address_nothing_answers_on_is_a_one_line_error():
    with pytest.raises(CommandError, match="cannot reach the Ray cluster at ray://127.0.0.1:1: "):
        check_reachable("ray://127.0.0.1:1")
    check_reachable("auto")  # left to Ray


def test_a_pipeline_that_does_not_load_is_a_one_line_error(cluster, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(corpus(3))
    result = tag(source, "-m", tmp_path / "nowhere", "--engine", "ray")
    assert result.exit_code == 1
    assert "a Ray actor could not load the pipeline: cannot load model" in result.stderr
    assert "Traceback" not in result.stderr


def test_tag_dataset_annotates_rows_like_the_command(cluster, rules, tmp_path):
    from spacy_lsllama.tagging.ray_data import tag_dataset

    local, _ = run_both(rules, tmp_path, corpus(20, bad_every=100))
    records = [json.loads(line) for line in local[1].splitlines()]
    rows = [{"id": r["id"], "text": r["text"]} for r in records]
    context = cluster.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    tagged = tag_dataset(cluster.data.from_items(rows), str(rules), batch_size=8, actors=2)
    tagged.write_parquet(str(tmp_path / "parquet"))
    out = tagged.take_all()
    assert [row["id"] for row in out] == [r["id"] for r in records]
    assert [list(row["ents"]) for row in out] == [r["ents"] for r in records]
    assert [row["cats"] for row in out] == [r["cats"] for r in records]
    assert list((tmp_path / "parquet").glob("*.parquet"))


def test_an_actor_answering_for_another_line_stops_the_run():
    lines = [Line(n, b"{}", 0, False) for n in (1, 2)]
    records = [Record("a", ()), LineError("not json")]
    batch = list(zip(lines, records))
    with pytest.raises(CommandError, match="returned line 7 for line 1"):
        list(_outcomes(batch, [_tagged(7), None]))
    with pytest.raises(CommandError, match="returned 1 results for 2 lines"):
        list(_outcomes(batch, [_tagged(1)]))


def _tagged(number):
    from collections import Counter

    from spacy_lsllama.tagging.records import Tagged

    return Tagged(number, b"{}\n", "a", {}, 1, Counter(), ())


@pytest.mark.slow  # a process that starts its own cluster: about 30 s
def test_ctrl_c_stops_cleanly_and_the_local_engine_resumes(cluster, rules, tmp_path):
    data = corpus(6000, bad_every=97)
    local, _ = run_both(rules, tmp_path, data, batch="64")
    output = tmp_path / "out.jsonl"
    args = [tmp_path / "in.jsonl", "-m", rules, "-o", output]
    command = [sys.executable, "-m", "spacy_lsllama.cli", "tag", *map(str, args)]
    env = {**os.environ, **RAY_ENV, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [*command, "--engine", "ray"], stderr=subprocess.PIPE, env=env, preexec_fn=default_sigint
    )
    while not output.exists() or output.stat().st_size < 20_000:
        assert process.poll() is None, "finished before it could be interrupted"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=60)[1].decode()
    assert process.returncode == 130, stderr
    assert "run again with --resume" in stderr
    assert "Traceback" not in stderr
    assert output.stat().st_size < len(local[1])
    assert tag(*args, "--resume").exit_code == 0
    assert output.read_bytes() == local[1]


def test_ray_options_need_the_ray_engine(rules, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(corpus(2))
    result = tag(source, "-m", rules, "--actors", "2")
    assert result.exit_code == 2
    assert "--actors is an option of --engine ray" in result.stderr


def test_without_the_extra_engine_ray_names_it(rules, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    source = tmp_path / "in.jsonl"
    source.write_bytes(corpus(2))
    result = tag(source, "-m", rules, "--engine", "ray")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        'error: --engine ray needs Ray Data: pip install "spacy-lsllama[ray]"'
    )
