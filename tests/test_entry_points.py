"""Every registered name resolves through its entry point alone, as spaCy finds it in a
config: in a fresh interpreter that has imported spaCy and nothing of this package."""

import importlib.metadata
import json
import subprocess
import sys

from spacy.language import Language

from spacy_lsllama.pipeline.transformer import FACTORY

REGISTRIES = {
    "spacy_architectures": "architectures",
    "spacy_misc": "misc",
    "spacy_callbacks": "callbacks",
    "spacy_readers": "readers",
    "spacy_scorers": "scorers",
    "thinc_schedules": "schedules",
}
ENTRY_POINTS = importlib.metadata.distribution("spacy-lsllama").entry_points
CHECK = """
import json, sys, spacy
assert not any(module.startswith("spacy_lsllama") for module in sys.modules)
for registry, name in json.loads(sys.argv[1]):
    getattr(spacy.registry, registry).get(name)
"""


def test_every_registered_name_resolves_from_its_entry_point():
    groups = {point.group for point in ENTRY_POINTS} - {"spacy_factories", "console_scripts"}
    assert groups <= set(REGISTRIES), groups - set(REGISTRIES)
    names = [(REGISTRIES[p.group], p.name) for p in ENTRY_POINTS if p.group in REGISTRIES]
    assert ("scorers", "spacy-lsllama.seqeval_ner_scorer.v1") in names
    assert ("readers", "spacy-lsllama.DocumentCorpus.v1") in names
    result = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(names)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_transformer_factory_declares_what_it_assigns():
    assert Language.get_factory_meta(FACTORY).assigns == ["doc._.trf_data"]
