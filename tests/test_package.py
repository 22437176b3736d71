"""The package round trip: `spacy package` output installed into a fresh virtual environment
in another directory finds its base model through a pip-installed package and predicts what
the training directory predicts. Offline: every install uses --no-index and local wheels."""

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from spacy_lsllama.testing import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
BASE_DIST = "lsllama-tiny-base"
TEXTS = ["Merkel visited London today", "Trudeau visited Paris today", "Nothing here ."]
LOAD = """
import json, spacy
from spacy_lsllama.layers.transformer_model import get_encoder
nlp = spacy.load("en_lsllama_ner")
docs = list(nlp.pipe({texts!r}))
print(json.dumps({{
    "ents": [[[e.text, e.label_] for e in doc.ents] for doc in docs],
    "base_name": get_encoder(nlp.get_pipe("llm").model).base_name,
    "meta": nlp.meta,
}}))
"""


def run(command: list, cwd: Path = ROOT) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def fresh_venv(path: Path) -> Path:
    """A new venv that sees this environment's packages (a .pth line) but none of its own."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    ours = sysconfig.get_path("purelib")
    (Path(site.strip()) / "_current_env.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n"
    )
    return python


def base_model_wheel(model: Path, root: Path) -> Path:
    """A wheel of the Python package `lsllama-tiny-base` that ships the model directory."""
    source = root / "src"
    shutil.copytree(model, source / "lsllama_tiny_base" / "model")
    (source / "lsllama_tiny_base" / "__init__.py").write_text("")
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{BASE_DIST}"\nversion = "0.1.0"\n'
        '[tool.setuptools.package-data]\nlsllama_tiny_base = ["model/*"]\n'
    )
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    run([*pip, "--no-index", "-w", str(root / "wheels"), str(source)])
    return root / "wheels"


@pytest.mark.slow
def test_packaged_pipeline_loads_in_a_fresh_venv_with_its_base_model_from_pip(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from pipeline.test_ner import generated_examples, make_nlp, train

    base = build_tiny_model(tmp_path / "trained-on" / "tiny", "llama")
    nlp = make_nlp(base)
    train(nlp, generated_examples(nlp), steps=30)
    nlp.to_disk(tmp_path / "model-best")
    expected = [[[e.text, e.label_] for e in doc.ents] for doc in nlp.pipe(TEXTS)]
    assert any(expected)
    wheels = base_model_wheel(base, tmp_path / "base-wheel")

    # Packaging machine: the base-model package installed, the name verified, an sdist built.
    packager = fresh_venv(tmp_path / "packager")
    install = [str(packager), "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
    run([*install, *map(str, wheels.glob("*.whl"))])
    run([str(packager), "scripts/prepare_package.py", str(tmp_path / "model-best"),
         str(tmp_path / "model-package"), "--name", "en_lsllama_ner", "--version", "0.0.1",
         "--base-model", f"pip:{BASE_DIST}", "--license", "MIT (synthetic test sentences)",
         "--source", "generated test sentences"])  # fmt: skip
    (tmp_path / "packages").mkdir()
    run([str(packager), "-m", "spacy", "package", str(tmp_path / "model-package"),
         str(tmp_path / "packages"), "--build", "sdist", "--force"])  # fmt: skip
    sdist = next((tmp_path / "packages").glob("en_lsllama_ner-0.0.1/dist/*.tar.gz"))

    # Another machine: the trained-on base model is gone; pip installs the base-model package
    # because the pipeline package requires it.
    shutil.rmtree(tmp_path / "trained-on")
    user = fresh_venv(tmp_path / "user")
    run([str(user), "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation",
         "--find-links", str(wheels), str(sdist)])  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    loaded = json.loads(run([str(user), "-c", LOAD.format(texts=TEXTS)], cwd=elsewhere))
    assert loaded["ents"] == expected
    assert loaded["base_name"] == f"pip:{BASE_DIST}"
    assert f"{BASE_DIST}==0.1.0" in loaded["meta"]["requirements"]
    assert loaded["meta"]["license"] == "MIT (synthetic test sentences)"
    assert "generated test sentences" in loaded["meta"]["description"]
