"""Does tagging depend on the torch thread count? Tag the same texts at each count, compare.

    python benchmarks/thread_determinism.py corpus/test.jsonl --limit 1000 [--dtype bfloat16]

Loads the pipeline once, tags the JSONL texts with ``nlp.pipe`` (batches of --batch-size, as
``lsllama tag``) at each ``--threads`` count, twice at the first count (the same count must
give the same output), and prints per pair of counts how many records differ: in their
entities (offsets or labels) and in their scores only. One JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

Annotations = list[dict[str, Any]]


def tag(nlp: Any, texts: list[str], threads: int, batch_size: int) -> Annotations:
    """The fields ``lsllama tag`` adds to each text (`RecordBuilder`), at ``threads``."""
    from spacy_lsllama.tagging.records import OutputPlan, RecordBuilder

    builder = RecordBuilder(OutputPlan.for_pipeline(nlp))
    torch.set_num_threads(threads)
    return [builder.annotations(doc) for doc in nlp.pipe(texts, batch_size=batch_size)]


def differences(a: Annotations, b: Annotations) -> dict[str, int]:
    """Records whose entities (offsets, labels) differ; records that differ in scores only;
    entities found by one run and not the other."""
    spans = [(_entities(x), _entities(y)) for x, y in zip(a, b)]
    return {
        "records_entities_differ": sum(x != y for x, y in spans),
        "records_scores_differ_only": sum(
            x == y and ra != rb for (x, y), ra, rb in zip(spans, a, b)
        ),
        "entities_in_one_only": sum(len(set(x) ^ set(y)) for x, y in spans),
    }


def _entities(annotations: dict[str, Any]) -> list[tuple[int, int, str]]:
    return [(e["start"], e["end"], e["label"]) for e in annotations.get("ents", [])]


def measure(
    model: str, texts: list[str], threads: list[int], dtype: str, batch_size: int
) -> dict[str, Any]:
    from spacy_lsllama.pipeline.loading import EncoderDtype, load_pipeline
    from spacy_lsllama.pipeline.transformer import encoder_dtypes

    nlp = load_pipeline(model, dtype=EncoderDtype(dtype))
    first = tag(nlp, texts, threads[0], batch_size)
    again = tag(nlp, texts, threads[0], batch_size)
    report: dict[str, Any] = {
        "model": model,
        "records": len(texts),
        "dtype": encoder_dtypes(nlp),
        "torch": torch.__version__,
        "batch_size": batch_size,
        f"{threads[0]} vs {threads[0]}": differences(first, again),
    }
    for count in threads[1:]:
        report[f"{threads[0]} vs {count}"] = differences(first, tag(nlp, texts, count, batch_size))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", type=Path, help='JSONL file of {"text": ...} records')
    parser.add_argument("--model", default="en_lsllama_ner")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    lines = args.texts.read_text(encoding="utf-8").splitlines()[: args.limit]
    texts = [json.loads(line)["text"] for line in lines]
    threads = [int(count) for count in args.threads.split(",")]
    report = measure(args.model, texts, threads, args.dtype, args.batch_size)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
