"""benchmarks/: what the scripts do before measuring anything (the measuring is `--quick` in CI)."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.pipeline.loading import EncoderDtype
from spacy_lsllama.testing import encoder_nlp, trained_adapter_nlp

ROOT = Path(__file__).resolve().parents[1]
# Run a benchmark script as `python SCRIPT ARGS...` would, with some modules uninstallable.
WITHOUT = """
import runpy, sys
script, hidden, *args = sys.argv[1:]
for name in hidden.split(","):
    sys.modules[name] = None  # as if not installed: find_spec gives None, import fails
sys.path.insert(0, str(__import__("pathlib").Path(script).parent))
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""


def run_benchmark(
    script: str, *args: str, timeout: int = 120, **kwargs
) -> subprocess.CompletedProcess:
    """`python benchmarks/SCRIPT ARGS...` as a user runs it, its output captured."""
    command = [sys.executable, str(ROOT / "benchmarks" / script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.mark.parametrize("hidden", ["matplotlib", "psutil", "matplotlib,psutil"])
@pytest.mark.parametrize("script", ["run.py", "inference.py", "training.py"])
def test_a_missing_bench_extra_stops_at_once_with_one_line(tmp_path, script, hidden):
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT, str(ROOT / "benchmarks" / script), hidden]
        + ["--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: the benchmarks need {hidden.replace(',', ', ')} (the bench extra): "
        'pip install -e ".[bench]"'
    ]
    assert not out.exists()  # nothing was measured


@pytest.mark.parametrize("script", ["run.py", "training.py", "precision.py", "inference.py"])
def test_missing_conll_data_stops_at_once_with_one_line(tmp_path, script):
    out = tmp_path / "results"
    result = run_benchmark(
        script, "--quick", "--out", str(out), env={**os.environ, "LSLLAMA_CONLL_DIR": str(tmp_path)}
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: no CoNLL-2003 file at {tmp_path}/eng.")
    assert "set LSLLAMA_CONLL_DIR" in line
    assert not out.exists()  # nothing was measured


def test_the_help_needs_no_bench_extra():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT, str(ROOT / "benchmarks" / "run.py"), "matplotlib"]
        + ["--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "--quick" in result.stdout


def test_training_profile_says_where_a_cached_step_goes(tmp_path):
    out = tmp_path / "results"
    result = run_benchmark(
        "training.py", "--quick", "--profile", "cached", "--out", str(out), timeout=600
    )
    assert result.returncode == 0, result.stderr
    report = (out / "training_profile_cached.txt").read_text()
    assert report.startswith("cached: ") and "s/step under cProfile over 4 later-epoch" in report
    assert "tottime" in report and "spacy_lsllama" in report


def test_precision_profile_says_where_an_auto_step_goes(tmp_path):
    out = tmp_path / "results"
    result = run_benchmark("precision.py", "--quick", "--profile", "--out", str(out), timeout=600)
    assert result.returncode == 0, result.stderr
    report = (out / "precision_profile.txt").read_text()
    assert (
        report.startswith("configs/ner.cfg, dtype auto (") and "s/step under the profiler" in report
    )
    assert "aten::mm" in report


def test_precision_as_a_host_without_bf16_units_runs_float32_on_avx2_kernels(tmp_path):
    """--as-host neither: every process computes with AVX2 kernels and `auto` is float32,
    as on a host with neither AMX nor AVX-512 BF16."""
    out = tmp_path / "results"
    result = run_benchmark(
        "precision.py", "--quick", "--as-host", "neither", "--out", str(out), timeout=600
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads((out / "precision.json").read_text())
    assert measured["machine"]["cpu_capability"] == "AVX2"
    assert measured["machine"]["host_kind"].startswith("neither")
    assert {name: row["dtype"] for name, row in measured["train"].items()} == {"auto": "float32"}
    assert measured["train"]["auto"]["cpu_capability"] == "AVX2"


def test_ulp_nudge_moves_each_nonzero_trainable_weight_by_one_unit(tiny_model_dir, monkeypatch):
    """The perturbation experiment's callback: one float32 step up for every non-zero
    trainable weight, nothing else touched."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    ulp_nudge = pytest.importorskip("ulp_nudge")
    nlp = encoder_nlp(tiny_model_dir, lora={"@misc": "spacy-lsllama.LoRA.v1", "r": 4})
    encoder = get_encoder(nlp.get_pipe("llm").model)
    before = {name: w.detach().clone() for name, w in encoder.named_parameters()}
    ulp_nudge.make_ulp_nudge()(nlp)
    moved = 0
    for name, weight in encoder.named_parameters():
        old = before[name]
        if weight.requires_grad:
            moved += int((old != 0).sum())
            up = torch.nextafter(old, torch.full_like(old, torch.inf))
            assert torch.equal(weight, torch.where(old != 0, up, old)), name
        else:
            assert torch.equal(weight, old), name
    assert moved > 0


@pytest.mark.parametrize("merge_lora", [True, False])
def test_int8_lever_quantizes_the_base_layers_and_runs_with_lora_merged_or_not(
    tiny_model_dir, monkeypatch, merge_lora
):
    """The inference benchmark's int8 lever: the base projections become dynamically quantized
    layers, unmerged LoRA adapters stay float32 layers (peft reads their weights' dtype), and
    the pipeline still runs, with states near float32's."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    levers = pytest.importorskip("levers")
    nlp = trained_adapter_nlp(tiny_model_dir, dtype="float32")
    encoder = get_encoder(nlp.get_pipe("llm").model)
    text = "John Smith works at Acme Corp in Berlin ."
    reference = nlp(text)._.trf_data.model_output.last_hidden_state
    copied = copy.deepcopy(encoder)
    prepared = (
        levers.merged(copied) if merge_lora else levers.with_settings(copied, merge_lora=False)
    )
    quantized = levers.int8_dynamic(prepared)
    kinds = {name: type(module) for name, module in quantized.named_modules()}
    assert any(k.__module__.startswith("torch.ao.nn.quantized") for k in kinds.values())
    adapters = [k for n, k in kinds.items() if n.endswith(".lora_A.default")]
    assert adapters and all(k is torch.nn.Linear for k in adapters)
    with levers.applied(nlp, levers.Lever("int8"), quantized):
        states = nlp(text)._.trf_data.model_output.last_hidden_state
    similarity = torch.nn.functional.cosine_similarity(
        torch.as_tensor(states).flatten(), torch.as_tensor(reference).flatten(), dim=0
    )
    assert similarity > 0.9


def test_experiments_score_only_in_dtypes_lsllama_evaluate_accepts():
    """The driver checks --eval-dtype before training; its choices are evaluate's."""
    result = run_benchmark("experiments.py", "--help")
    choices = "{" + ",".join(dtype.value for dtype in EncoderDtype) + "}"
    assert result.returncode == 0 and f"--eval-dtype {choices}" in result.stdout


LOG = """E    #       LOSS LLM  LOSS NER  ENTS_F  ENTS_P  ENTS_R  SCORE
---  ------  --------  --------  ------  ------  ------  ------
{rows}
"""


def test_experiments_dev_curve_runs_on_across_a_resume(tmp_path, monkeypatch):
    """A continuation's evaluations count from the steps it resumed at; the stopped run's
    evaluations after that save belong to weights that were lost."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    experiments = pytest.importorskip("experiments")
    rows = [(0, 1.0), (100, 50.0), (200, 60.0)]
    row = "  0  {step:>6}  1.00  1.00  {f:.2f}  1.00  1.00  0.50"
    for name, table in (("run.log", rows), ("run.resume-101.log", rows[:2])):
        lines = "\n".join(row.format(step=step, f=f) for step, f in table)
        (tmp_path / name).write_text(LOG.format(rows=lines))
    curve = experiments.dev_curve(tmp_path, "run")
    assert curve == [(0, 1.0), (100, 50.0), (101, 1.0), (201, 50.0)]


def test_experiments_sweep_changes_one_setting_of_the_recipe(tmp_path, monkeypatch):
    """Each sweep run sets its value once, over the driver's own learning rate, and the
    sweep's table starts from the recipe's row at the same budget."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    experiments = pytest.importorskip("experiments")
    args = experiments.parser().parse_args(["--runs", str(tmp_path)])
    grid = {e.name: e for e in experiments.grid([0], 0.5)}
    command = grid["conll2003-sweep-lr-1e-3"].train_command(args, tmp_path)
    rates = [command[i + 1] for i, arg in enumerate(command) if arg.endswith("initial_rate")]
    assert rates == ["0.001"]
    qkvo = grid["conll2003-sweep-targets-qkvo"].train_command(args, tmp_path)
    assert qkvo[qkvo.index("--components.llm.model.lora.target_modules") + 1].count("proj") == 4
    chosen = [grid["conll2003-sweep-rank-32"], grid[experiments.RECIPE_AT_ABLATION_BUDGET]]
    results = {e.name: {"scores": {"ents_f": f}} for e, f in zip(chosen, (0.8, 0.85))}
    table = experiments.tables(chosen, results, args).split("### NER recipe sweep")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    assert rows[0].startswith("| (the recipe) |") and "85.0" in rows[0]
    assert rows[1].startswith("| components.llm.model.lora.r | 32 |") and "80.0" in rows[1]


def test_experiments_choose_the_outside_penalty_on_dev_and_score_test_once(tmp_path, monkeypatch):
    """A finished NER run scored on test gets `lsllama tune-ner` on dev, then one test
    evaluation at the penalty chosen there; dev-scored runs (the ablation) are left alone."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    experiments = pytest.importorskip("experiments")
    args = experiments.parser().parse_args(["--runs", str(tmp_path)])
    grid = {e.name: e for e in experiments.grid([0], 0.5)}
    wnut, ablation = grid["wnut17-bidir-s0"], grid["conll2003-ablation-unmasked-all"]
    assert wnut.tuned and not ablation.tuned
    ran = []

    def fake_run(command, log_path, env):
        ran.append(command)
        output = Path(command[command.index("--output") + 1])
        if "tune-ner" in command:
            output.write_text(json.dumps({"best": {"outside_penalty": 1.5, "ents_f": 0.6}}))
        else:
            output.write_text(json.dumps({"ents_f": 0.44}))
        return 1.0

    monkeypatch.setattr(experiments, "run_logged", fake_run)
    (tmp_path / "wnut17-bidir-s0.scores.json").write_text(json.dumps({"scores": {"ents_f": 0.43}}))
    result = experiments.run_one(wnut, args, tmp_path)
    tune, evaluate = ran
    assert tune[tune.index("tune-ner") + 2] == "corpus/wnut17/dev.spacy"
    assert evaluate[evaluate.index("evaluate") + 2] == "corpus/wnut17/test.spacy"
    assert evaluate[evaluate.index("--components.ner.outside_penalty") + 1] == "1.5"
    assert result["tuned"]["outside_penalty"] == 1.5
    saved = json.loads((tmp_path / "wnut17-bidir-s0.scores.json").read_text())
    assert saved["tuned"]["scores"]["ents_f"] == 0.44 and saved["scores"]["ents_f"] == 0.43
    assert experiments.run_one(wnut, args, tmp_path) == saved and len(ran) == 2
    table = experiments.tables([wnut], {wnut.name: saved}, args).split("### NER (seqeval)")[1]
    assert "| 43.00 | 1.50 | 44.00 |" in table


# benchmarks/gpu_check.sh and its helper (the GPU itself is not here: the CPU runs the steps)
GPU_CHECK = ROOT / "benchmarks" / "gpu_check.py"


def gpu_check_helper(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, str(GPU_CHECK), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def write_records(path: Path, records: list[list[tuple[int, int, str]]]) -> Path:
    lines = [
        {"text": "x", "ents": [{"start": s, "end": e, "label": lab} for s, e, lab in r]}
        for r in records
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_gpu_check_compare_passes_and_fails_on_its_thresholds(tmp_path):
    a = write_records(tmp_path / "a.jsonl", [[(0, 5, "PER")], [(1, 2, "LOC")], []])
    b = write_records(tmp_path / "b.jsonl", [[(0, 5, "PER")], [(1, 2, "ORG")], []])
    passed = gpu_check_helper(
        "compare", "pair", a, b, "--min-records", 0.6, "--json", tmp_path / "n.json"
    )
    assert passed.returncode == 0
    assert passed.stdout.startswith(
        "PASS pair: 66.7% of 3 records the same (need 60%), entity F1 0.5000"
    )
    assert json.loads((tmp_path / "n.json").read_text())["pair"]["entities"] == [2, 2]
    failed = gpu_check_helper("compare", "pair", a, b, "--min-f1", 0.9)
    assert failed.returncode == 1 and failed.stdout.startswith("FAIL pair:")
    shorter = write_records(tmp_path / "c.jsonl", [[(0, 5, "PER")]])
    assert gpu_check_helper("compare", "pair", a, shorter).returncode == 1


def test_gpu_check_slim_strips_libraries_and_keeps_a_valid_record(tmp_path):
    import zipfile

    library = Path(json.__file__).parent.parent / "lib-dynload"
    so = min(library.glob("*.so"), key=lambda path: path.stat().st_size)
    wheel = tmp_path / "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as out:
        out.write(so, "demo/_native.so")
        out.writestr("demo/__init__.py", "")
        out.writestr("demo/tests/test_x.py", "")
        out.writestr("demo-1.0.dist-info/RECORD", "stale\n")
    result = gpu_check_helper("slim", wheel)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(wheel) as slimmed:
        names = slimmed.namelist()
        record = slimmed.read("demo-1.0.dist-info/RECORD").decode().splitlines()
        native = slimmed.read("demo/_native.so")
    assert "demo/tests/test_x.py" not in names
    assert len(native) <= so.stat().st_size
    assert record[-1] == "demo-1.0.dist-info/RECORD,,"
    assert {row.split(",")[0] for row in record} == set(names)


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu(tmp_path):
    """The whole check with --device cpu on a small made-up corpus: every line PASS."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    people, places = ["Obama", "Merkel", "Macron", "Trudeau"], ["Paris", "Tokyo", "Berlin"]
    docs = []
    for i in range(60):
        person, place = people[i % 4], places[i % 3]
        doc = nlp.make_doc(f"{person} visited {place} on day {i} .")
        doc.ents = [doc.char_span(0, len(person), "PER")] + [
            doc.char_span(len(person) + 9, len(person) + 9 + len(place), "LOC")
        ]
        docs.append(doc)
    for split in ("train", "dev", "test"):
        DocBin(docs=docs).to_disk(corpus / f"{split}.spacy")
    wheels = tmp_path / "wheelhouse"
    assert gpu_check_helper("data", corpus, wheels / "data").returncode == 0
    env = {
        **__import__("os").environ,
        "GPU_CHECK_WHEELS": str(wheels),
        "OUT": str(tmp_path / "out"),
    }
    env["PYTHON"] = sys.executable
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--steps", "30"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    lines = (tmp_path / "out" / "check.log").read_text().splitlines()
    assert not [line for line in lines if line.startswith("FAIL")]
    assert sum(line.startswith("PASS") for line in lines) >= 12, lines  # every step and check
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results) >= {"device vs CPU, float32", "device vs CPU, bfloat16"}
    assert len(list((tmp_path / "out").iterdir())) <= 8  # what the device tool brings back


def test_attention_kernels_are_timed_side_by_side_for_every_width(tmp_path):
    out = tmp_path / "results"
    result = run_benchmark("attention_kernel.py", "--quick", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "attention_kernel.json").read_text())["results"]
    cases = {(row["dtype"], row["pass"], row["width"]) for row in rows}
    assert cases == {
        (dtype, kind, width)
        for dtype in ("bfloat16", "float32")
        for kind in ("training", "prediction")
        for width in (16, 32)
    }
    for row in rows:
        assert row["flash_ms"] > 0 and row["math_ms"] > 0
        assert row["flash_over_math"] == row["flash_ms"] / row["math_ms"]


def test_step_times_records_every_update_of_spacy_train(tiny_model_dir, tmp_path):
    """`spacy train --code benchmarks/step_times.py`: one row per update with its batch's
    words, the machine's pace probed before the first; the summary reads the file back."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docs = []
    for i in range(24):
        doc = nlp.make_doc(f"Merkel visited Paris {'again ' * (i % 5)}on day {i} .")
        doc.ents = [doc.char_span(0, 6, "PER"), doc.char_span(15, 20, "LOC")]
        docs.append(doc)
    data = tmp_path / "data.spacy"
    DocBin(docs=docs).to_disk(data)
    log = tmp_path / "steps.tsv"
    command = [sys.executable, "-m", "spacy", "train", str(ROOT / "configs" / "ner.cfg"),
               "--code", str(ROOT / "benchmarks" / "step_times.py"),
               "--paths.base_model", str(tiny_model_dir), "--paths.train", str(data),
               "--paths.dev", str(data), "--training.max_steps", "2",
               "--components.llm.model.unmasked_layers", "top 1",
               "--components.llm.model.lora.layers", "top 1"]  # fmt: skip
    env = {**os.environ, "LSLLAMA_STEP_TIMES": str(log)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [line.split("\t") for line in log.read_text().splitlines()[1:]]
    assert [row[1] for row in rows] == ["probe-bfloat16", "probe-float32"] + ["update"] * 3
    updates = rows[2:]
    assert all(row[3] == "8" and float(row[2]) > 0 for row in updates)
    # spaCy updates at steps 0 to max_steps: three batches of eight, the 24 documents once
    assert sum(int(row[4]) for row in updates) == sum(len(doc) for doc in docs)
    assert {int(row[5]) for row in updates} <= {len(doc) for doc in docs}
    summary = run_benchmark("step_times.py", str(log), "--window", "2")
    assert summary.returncode == 0, summary.stderr
    lines = summary.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines[1:]] == ["1-2", "3-3"]
    # the probes taken before update 1 belong to its window; none came before update 3
    assert "-" not in lines[1].split("\t")[3] and lines[2].split("\t")[3] == "- / -"
