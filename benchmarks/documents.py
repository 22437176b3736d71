"""Words/s on documents (consecutive CoNLL-2003 test sentences) by rows per forward pass.

CoNLL sentences are short: a forward chunk of 8 packed rows holds a few hundred pieces. Real
documents fill windows of hundreds of pieces, and 8 such rows make activations of several
megabytes per layer, which the elementwise passes between the matrix products stream
through memory. This benchmark runs the (a) pipeline over documents with several
`rows_per_forward` values, alternating them on the same batches, and reports each one's
speed-up over the pipeline's own setting (the config default, 8) in the same run.

    python benchmarks/documents.py --base-model models/smollm2-135m [--pipeline PATH] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from collections.abc import Sequence
from functools import partial
from typing import Any

from common import (
    CONLL_TEST,
    add_pipeline_options,
    benchmark_parser,
    chunks,
    load_sentences,
    log,
    machine,
    markdown_table,
    results_dir,
    timed,
    write_results,
)
from inference import lsllama_pipeline, run_script

ROWS = (1, 2, 4, 8)  # rows_per_forward tried, besides the pipeline's own


def documents(words_per_doc: int, n_docs: int) -> list[str]:
    """Texts of about `words_per_doc` words, each from consecutive test sentences."""
    docs, current, words = [], [], 0
    for sentence in load_sentences(CONLL_TEST, n_docs * words_per_doc, block=None):
        current.append(sentence.text)
        words += len(sentence.words)
        if words >= words_per_doc:
            docs.append(" ".join(current))
            current, words = [], 0
            if len(docs) == n_docs:
                break
    return docs


def time_rows(
    nlp: Any,
    encoder: Any,
    texts: Sequence[str],
    batch_size: int,
    rounds: int,
    tried: Sequence[int],
) -> dict[int, float]:
    """Median seconds per setting over `rounds` passes; within a pass they alternate per batch."""
    original = encoder.settings
    passes: dict[int, list[float]] = {rows: [] for rows in tried}
    try:
        list(nlp.pipe(texts[:2], batch_size=batch_size))
        for _ in range(rounds):
            seconds = dict.fromkeys(tried, 0.0)
            for block in chunks(texts, batch_size):
                for rows in tried:
                    encoder.settings = dataclasses.replace(original, rows_per_forward=rows)
                    seconds[rows] += timed(partial(list, nlp.pipe(block, batch_size=batch_size)))[0]
            for rows, total in seconds.items():
                passes[rows].append(total)
    finally:
        encoder.settings = original
    return {rows: statistics.median(values) for rows, values in passes.items()}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from spacy_lsllama.layers.transformer_model import get_encoder

    texts = documents(args.words, args.docs)
    words = sum(len(text.split()) for text in texts)
    log(f"documents: {len(texts)} of about {args.words} words, {args.base_model}")
    nlp = lsllama_pipeline(args.base_model, args.pipeline, load_sentences(CONLL_TEST, 64))
    encoder = get_encoder(nlp.get_pipe("llm").model)
    default = encoder.settings.rows_per_forward
    tried = sorted({*ROWS, default})
    seconds = time_rows(nlp, encoder, texts, args.batch_size, args.rounds, tried)
    rows = [
        {
            "rows_per_forward": n,
            "seconds": s,
            "words_per_s": words / s,
            "speedup_vs_default": seconds[default] / s,
        }
        for n, s in seconds.items()
    ]
    for row in rows:
        rate = row["words_per_s"]
        log(f"documents, rows_per_forward {row['rows_per_forward']}: {rate:.1f} words/s")
    return {
        "documents": len(texts),
        "words": words,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "pipeline": str(args.pipeline) if args.pipeline else None,
        "default_rows_per_forward": default,
        "machine": machine(),
        "rows": rows,
    }


def report(result: dict[str, Any]) -> str:
    table = [[row["rows_per_forward"], row["words_per_s"], row["speedup_vs_default"]]
             for row in result["rows"]]  # fmt: skip
    return (
        f"## Documents: {result['documents']} texts, {result['words']} words\n\n"
        f"Consecutive CoNLL-2003 test sentences joined into documents; nlp.pipe batches of "
        f"{result['batch_size']}; the settings alternate batch by batch, median of "
        f"{result['rounds']} passes; {result['machine']['torch_threads']} torch threads.\n\n"
        + markdown_table(
            ["rows_per_forward", "words/s", f"× {result['default_rows_per_forward']} rows"], table
        )
        + "\n"
    )


def parser() -> argparse.ArgumentParser:
    p = benchmark_parser(__doc__.splitlines()[0], "4 short documents (smoke test)")
    add_pipeline_options(p, batch_size=8, rounds=2)
    p.add_argument("--words", type=int, default=300, help="words per document")
    p.add_argument("--docs", type=int, default=16, help="documents")
    return p


def apply_quick(args: argparse.Namespace) -> None:
    if args.quick:
        args.words, args.docs, args.rounds = 60, 4, 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    result = measure(args)
    write_results(results_dir(args.out, args.quick), "documents", result, report(result))
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run_script(parser(), apply_quick, run, argv)


if __name__ == "__main__":
    main()
