"""Fixtures for the CLI tests: pipelines that load in this process and in subprocesses."""

from pathlib import Path

import pytest

from spacy_lsllama.testing import lsllama_ner_pipeline, rule_pipeline


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fast fixture: an entity ruler and a bag-of-words textcat."""
    return rule_pipeline(tmp_path_factory.mktemp("pipeline") / "tiny")


@pytest.fixture(scope="session")
def lsllama_pipeline(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """An LS-unLLaMA NER pipeline over the tiny random Llama, trained a few steps."""
    return lsllama_ner_pipeline(tmp_path_factory.mktemp("lsllama") / "ner", tiny_model_dir)


@pytest.fixture(params=["rules", "lsllama"])
def pipeline(request: pytest.FixtureRequest) -> Path:
    """Each pipeline the contract tests run on: the fast rule one and the LS-LLaMA one."""
    return request.getfixturevalue(
        "tiny_pipeline" if request.param == "rules" else "lsllama_pipeline"
    )
