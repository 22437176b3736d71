"""Re-save a trained pipeline for `spacy package`, optionally with its base model embedded.

    python scripts/prepare_package.py training/ner/model-best training/ner/model-package \
        --name en_lsllama_ner --version 0.1.0 --embed-base-model true

The pipeline is loaded with `components.<encoder>.model.embed_base_model` overridden and
saved again. With `true`, the base model's weights and tokenizer are written into the
pipeline (`<encoder>/model/base/`), so the package loads on a machine that has never seen the
base model. With `false`, the pipeline keeps only its fingerprinted reference to the base
model, which is found at load time from the config's `components.<encoder>.model.name` or,
failing that, from the absolute path recorded when the pipeline was trained.

The package name and version go into meta.json, where `spacy package` reads them (its own
`--name` must not carry the language prefix, which it adds again).
"""

import argparse
import shutil
import sys
from pathlib import Path

import spacy

ENCODER_FACTORY = "lsllama_transformer"
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def parse_bool(value: str) -> bool:
    if value.lower() in TRUE + FALSE:
        return value.lower() in TRUE
    raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")


def encoder_names(model: Path) -> list[str]:
    """Names of the pipeline's lsllama_transformer components, from its config."""
    config = spacy.util.load_config(model / "config.cfg")
    return [
        name
        for name, component in config["components"].items()
        if component.get("factory") == ENCODER_FACTORY
    ]


def prepare(model: Path, output: Path, *, name: str, version: str, embed_base_model: bool) -> Path:
    if not (model / "config.cfg").is_file():
        sys.exit(f"error: {model} is not a spaCy pipeline directory (no config.cfg)")
    encoders = encoder_names(model)
    if not encoders:
        sys.exit(f"error: {model} has no {ENCODER_FACTORY} component")
    if output.resolve() == model.resolve():
        sys.exit("error: the output directory must differ from the input")
    overrides = {f"components.{name}.model.embed_base_model": embed_base_model for name in encoders}
    nlp = spacy.load(model, config=overrides)
    prefix = f"{nlp.lang}_"
    if not name.startswith(prefix) or not name.isidentifier():
        sys.exit(f"error: the package name {name!r} must be an identifier starting with {prefix}")
    nlp.meta["name"] = name[len(prefix) :]  # spacy package prefixes the language again
    nlp.meta["version"] = version
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
    args = parser.parse_args()
    prepare(
        args.model,
        args.output,
        name=args.name,
        version=args.version,
        embed_base_model=args.embed_base_model,
    )


if __name__ == "__main__":
    main()
