"""Compare an `lsllama evaluate` score with the one an installed pipeline publishes in its
meta.json; exit 1 when they differ by more than the tolerance.

    python scripts/compare_published.py metrics/en_lsllama_ner.json --pipeline en_lsllama_ner
"""

import argparse
import json
import sys
from pathlib import Path

import spacy

from spacy_lsllama.pipeline.loading import pipeline_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scores", type=Path, help="lsllama evaluate --output file")
    parser.add_argument("--pipeline", default="en_lsllama_ner", help="installed pipeline")
    parser.add_argument("--tolerance", type=float, default=0.1, help="in F1 points")
    args = parser.parse_args()
    measured = 100 * json.loads(args.scores.read_text())["ents_f"]
    meta = spacy.util.get_model_meta(pipeline_path(args.pipeline))
    published = 100 * meta["performance"]["ents_f"]
    verdict = "reproduced" if abs(measured - published) <= args.tolerance else "NOT reproduced"
    print(f"{args.pipeline}: test F1 {measured:.2f}, published {published:.2f}: {verdict}")
    sys.exit(verdict != "reproduced")


if __name__ == "__main__":
    main()
