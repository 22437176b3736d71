"""Shared fixtures: tiny models built at test time; `--slow` gates tests on the real model."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from spacy_lsllama.nn import precision  # noqa: E402
from spacy_lsllama.testing import build_tiny_model  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="run tests on the real base model")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow") or os.environ.get("LSLLAMA_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --slow or LSLLAMA_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The public benchmark sets: $LSLLAMA_DATA_DIR, else `shared/datasets` beside the
    checkout, else /work/shared/datasets; a test that reads them skips where none is."""
    beside = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    for root in (os.environ.get("LSLLAMA_DATA_DIR"), beside, "/work/shared/datasets"):
        if root and Path(root).is_dir():
            return Path(root)
    pytest.skip("no shared datasets (set LSLLAMA_DATA_DIR)")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random Llama checkpoint (safetensors + byte-level BPE tokenizer)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", "llama")


@pytest.fixture(scope="session")
def tiny_arch_dirs(tmp_path_factory: pytest.TempPathFactory):
    """Tiny random Llama, Mistral and Qwen2 checkpoints."""
    root = tmp_path_factory.mktemp("archs")
    return {arch: build_tiny_model(root / arch, arch) for arch in ("llama", "mistral", "qwen2")}


@pytest.fixture(scope="session")
def deep_arch_dirs(tmp_path_factory: pytest.TempPathFactory):
    """Tiny random Llama, Mistral and Qwen2 checkpoints with 6 layers (for layer blocks)."""
    root = tmp_path_factory.mktemp("deep")
    return {
        arch: build_tiny_model(root / arch, arch, n_layers=6)
        for arch in ("llama", "mistral", "qwen2")
    }


@pytest.fixture(autouse=True)
def cpu_without_fast_bfloat16(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run the same on every host: `dtype = "auto"` sees a CPU without AMX (float32).
    Tests of the CPU rule pass the flags they mean (tests/nn/test_precision.py)."""
    monkeypatch.setattr(precision, "cpu_flags", lambda *args, **kwargs: frozenset())
