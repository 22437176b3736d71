"""Check that a trained NER pipeline predicts the same after a save and load.

Runs `nlp.pipe` over a gold `.spacy` file with the pipeline as loaded, saves it with
`nlp.to_disk`, loads the copy with `spacy.load`, runs it again, and prints the seqeval F1 of
both and how many documents got different entities. Exits 1 if anything differs.

    python scripts/roundtrip.py training/ner/model-best corpus/conll2003/test.spacy
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_lsllama.pipeline.scorers import ner_scores


def predict(nlp: Language, references: list[Doc], batch_size: int) -> tuple[list[Doc], float]:
    """Predicted Docs for the references' texts and the seconds it took."""
    start = time.perf_counter()
    docs = list(nlp.pipe((doc.text for doc in references), batch_size=batch_size))
    return docs, time.perf_counter() - start


def entities(doc: Doc) -> list[tuple[int, int, str]]:
    return [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="trained pipeline directory or package name")
    parser.add_argument("data", type=Path, help="gold .spacy file")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)

    nlp = spacy.load(args.model)
    references = list(DocBin().from_disk(args.data).get_docs(nlp.vocab))
    before, seconds_before = predict(nlp, references, args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        nlp.to_disk(tmp)
        reloaded = spacy.load(tmp)
        after, seconds_after = predict(reloaded, references, args.batch_size)
    result = {
        "docs": len(references),
        "f1_before": ner_scores(map(Example, before, references))["f1"],
        "f1_after": ner_scores(map(Example, after, references))["f1"],
        "docs_differing": sum(entities(a) != entities(b) for a, b in zip(before, after)),
        "seconds_before": seconds_before,
        "seconds_after": seconds_after,
    }
    print(json.dumps(result, indent=2))
    if args.output is not None:
        args.output.write_text(json.dumps(result, indent=2))
    same = result["docs_differing"] == 0 and result["f1_before"] == result["f1_after"]
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
