"""Encoder throughput, causal (LS-LLaMA) against bidirectional (LS-unLLaMA), in one run.

    python benchmarks/encoder.py --base-model models/smollm2-135m --limit 640

Runs only the `lsllama_transformer` component (LoRA attached, untrained: speed does not
depend on the weights) over CoNLL-2003 test sentences and prints real pieces and words per
second for each mode and their ratio.
"""

from __future__ import annotations

import argparse
import time

from common import (
    CONLL_TEST,
    RESULTS_DIR,
    default_threads,
    load_sentences,
    log,
    set_threads,
    write_results,
)


def throughput(base_model: str, texts: list[str], bidirectional: bool) -> dict[str, float]:
    """Pieces/s and words/s of the encoder alone, after one warm-up batch."""
    import spacy

    nlp = spacy.blank("en")
    config = {"model": {"name": base_model, "bidirectional": bidirectional}}
    nlp.add_pipe("lsllama_transformer", name="llm", config=config)
    nlp.initialize()
    list(nlp.pipe(texts[:32]))
    start = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=64))
    seconds = time.perf_counter() - start
    pieces = sum(int(doc._.trf_data.wordpieces.lengths[0]) for doc in docs)
    words = sum(len(doc) for doc in docs)
    return {
        "seconds": seconds,
        "pieces_per_second": pieces / seconds,
        "words_per_second": words / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", required=True)
    parser.add_argument("--limit", type=int, default=640)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    set_threads(args.threads)
    texts = [s.text for s in load_sentences(CONLL_TEST, args.limit)]
    results = {"threads": args.threads, "sentences": len(texts)}
    for name, bidirectional in (("bidirectional", True), ("causal", False)):
        results[name] = throughput(args.base_model, texts, bidirectional)
        log(
            f"{name}: {results[name]['pieces_per_second']:.0f} pieces/s, "
            f"{results[name]['words_per_second']:.0f} words/s"
        )
    ratio = results["bidirectional"]["pieces_per_second"] / results["causal"]["pieces_per_second"]
    results["bidirectional_over_causal"] = ratio
    log(f"bidirectional / causal: {ratio:.2f}")
    rows = [
        f"| {name} | {results[name]['pieces_per_second']:.0f} | "
        f"{results[name]['words_per_second']:.0f} |"
        for name in ("bidirectional", "causal")
    ]
    markdown = "\n".join(
        [
            f"Encoder alone, {len(texts)} CoNLL-2003 test sentences, {args.threads} threads",
            "",
            "| mode | pieces/s | words/s |",
            "| --- | --- | --- |",
            *rows,
            "",
            f"bidirectional / causal: {ratio:.2f}",
        ]
    )
    write_results(RESULTS_DIR, "encoder", results, markdown)


if __name__ == "__main__":
    main()
