"""Helpers of benchmarks/gpu_check.sh: its data, its small random Llama, its comparisons.

    python benchmarks/gpu_check.py data CORPUS_DIR OUT_DIR   # train/dev subsets, lines.jsonl
    python benchmarks/gpu_check.py model DATA_DIR OUT_DIR    # a random Llama + BPE tokenizer
    python benchmarks/gpu_check.py float32 PIPELINE OUT_DIR  # a copy that predicts in float32
    python benchmarks/gpu_check.py compare NAME A.jsonl B.jsonl [--min-records F] [--min-f1 F]
    python benchmarks/gpu_check.py slim WHEEL...             # strip compiled wheels in place

`compare` prints one ``PASS``/``FAIL`` line and exits 1 on FAIL; the others print what they
wrote. Only the standard library, spaCy, tokenizers and transformers: nothing downloads.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

TRAIN_SENTENCES = 2000
DEV_SENTENCES = 200
LINES = 1000
VOCAB = 4096


def make_data(corpus: Path, out: Path) -> None:
    """The first sentences of CoNLL-2003 train and dev as DocBins, test as JSONL lines."""
    import spacy
    from spacy.tokens import DocBin

    vocab = spacy.blank("en").vocab
    out.mkdir(parents=True, exist_ok=True)
    for split, limit in (("train", TRAIN_SENTENCES), ("dev", DEV_SENTENCES)):
        docs = list(DocBin().from_disk(corpus / f"{split}.spacy").get_docs(vocab))[:limit]
        DocBin(docs=docs, store_user_data=False).to_disk(out / f"{split}.spacy")
    test = list(DocBin().from_disk(corpus / "test.spacy").get_docs(vocab))[:LINES]
    with (out / "lines.jsonl").open("w", encoding="utf-8") as file:
        for doc in test:
            file.write(json.dumps({"text": doc.text}, ensure_ascii=False) + "\n")
    print(f"wrote {out}: {TRAIN_SENTENCES} train, {DEV_SENTENCES} dev sentences, {LINES} lines")


def make_model(data: Path, out: Path, *, hidden: int = 256, layers: int = 4) -> None:
    """A random Llama (seeded) with a byte-level BPE tokenizer trained on the train texts."""
    import spacy
    from spacy.tokens import DocBin

    from spacy_lsllama.testing import build_tiny_model, tiny_tokenizer

    docs = DocBin().from_disk(data / "train.spacy").get_docs(spacy.blank("en").vocab)
    fast = tiny_tokenizer(VOCAB, texts=[doc.text for doc in docs])
    build_tiny_model(out, "llama", n_layers=layers, hidden_size=hidden, tokenizer=fast)
    print(f"wrote {out}: random Llama, hidden {hidden}, {layers} layers, vocab {len(fast)}")


def float32_copy(pipeline: Path, out: Path) -> None:
    """A copy of ``pipeline`` whose encoders predict in float32 (config ``dtype``)."""
    from spacy.util import load_config

    from spacy_lsllama.pipeline.transformer import FACTORY

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(pipeline, out)
    config = load_config(out / "config.cfg", interpolate=False)
    for settings in config["components"].values():
        if settings.get("factory") == FACTORY:
            settings["model"]["dtype"] = "float32"
    config.to_disk(out / "config.cfg")
    print(f"wrote {out}: float32")


def slim(wheel: Path) -> None:
    """Strip the debug symbols of a wheel's shared libraries and drop its test folders,
    rewriting its RECORD (spaCy's wheel shrinks from 36 to about 9 MB)."""
    with zipfile.ZipFile(wheel) as source:
        names = source.namelist()
        if not any(name.endswith(".so") for name in names):
            return
        before = wheel.stat().st_size
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory)
            source.extractall(root)
            libraries = [str(root / name) for name in names if name.endswith(".so")]
            subprocess.run(["strip", "--strip-unneeded", *libraries], check=True)
            kept = [n for n in names if "/tests/" not in n and not n.endswith(("/RECORD", "/"))]
            record = next(n for n in names if n.endswith(".dist-info/RECORD"))
            rows = io.StringIO()
            writer = csv.writer(rows, lineterminator="\n")
            for name in kept:
                data = (root / name).read_bytes()
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                writer.writerow([name, f"sha256={digest.decode()}", len(data)])
            writer.writerow([record, "", ""])
            slimmed = wheel.with_name(wheel.name + ".tmp")
            with zipfile.ZipFile(slimmed, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
                for name in kept:
                    out.write(root / name, name)
                out.writestr(record, rows.getvalue())
            slimmed.replace(wheel)
    print(f"slimmed {wheel.name}: {before / 1e6:.1f} -> {wheel.stat().st_size / 1e6:.1f} MB")


def entities(path: Path) -> list[set[tuple[int, int, str]]]:
    """Each output record's entities as (start, end, label)."""
    with path.open(encoding="utf-8") as file:
        records = [json.loads(line) for line in file]
    return [
        {(e["start"], e["end"], e["label"]) for e in record.get("ents", [])} for record in records
    ]


def compare(a: Path, b: Path) -> dict[str, Any]:
    """Records with the same entities, and the entity-level F1 of ``a`` against ``b``."""
    left, right = entities(a), entities(b)
    if len(left) != len(right):
        return {"records": [len(left), len(right)], "same_records": 0.0, "f1": 0.0}
    same = sum(x == y for x, y in zip(left, right))
    both = sum(len(x & y) for x, y in zip(left, right))
    total = sum(len(x) + len(y) for x, y in zip(left, right))
    return {
        "records": len(left),
        "same_records": same / max(1, len(left)),
        "entities": [sum(map(len, left)), sum(map(len, right))],
        "f1": 2 * both / total if total else 1.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("data", "model", "float32"):
        command = sub.add_parser(name)
        command.add_argument("source", type=Path)
        command.add_argument("out", type=Path)
    command = sub.add_parser("slim")
    command.add_argument("wheels", type=Path, nargs="+")
    command = sub.add_parser("compare")
    command.add_argument("name")
    command.add_argument("a", type=Path)
    command.add_argument("b", type=Path)
    command.add_argument("--min-records", type=float, default=0.0)
    command.add_argument("--min-f1", type=float, default=0.0)
    command.add_argument("--min-entities", type=int, default=0)
    command.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.command == "data":
        make_data(args.source, args.out)
    elif args.command == "model":
        make_model(args.source, args.out)
    elif args.command == "float32":
        float32_copy(args.source, args.out)
    elif args.command == "slim":
        for wheel in args.wheels:
            slim(wheel)
    else:
        result = compare(args.a, args.b)
        ok = (
            isinstance(result["records"], int)
            and result["same_records"] >= args.min_records
            and result["f1"] >= args.min_f1
            and min(result.get("entities", [0])) >= args.min_entities
        )
        if args.json:
            args.json.write_text(json.dumps({args.name: result}, indent=1) + "\n")
        print(
            f"{'PASS' if ok else 'FAIL'} {args.name}: {result['same_records']:.1%} of "
            f"{result['records']} records the same (need {args.min_records:.0%}), entity F1 "
            f"{result['f1']:.4f} (need {args.min_f1}), entities {result.get('entities')}"
        )
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
