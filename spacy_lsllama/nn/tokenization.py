"""Tokenizer loading and the fixes a Llama tokenizer needs before it can encode spaCy docs.

Decoder tokenizers are built for generation: many have no pad token, pad on the left, and the
ones transformers builds from GGUF files disagree with the GGUF metadata about bos and eos.
The encoder pads on the right (positions then start at zero for every sequence) and only ever
reads real tokens, so the pad id just has to exist. SentencePiece GGUF files (Gemma) get a
tokenizer rebuilt from their metadata (`gguf_spm`): the one transformers builds mis-splits words.
"""

from pathlib import Path

from transformers import AutoTokenizer
from transformers.tokenization_utils_fast import PreTrainedTokenizerFast

from .gguf_spm import GGUF_TOKEN_KEYS, build_spm_tokenizer, gguf_tokenizer_fields, is_spm


def load_tokenizer(name: str | Path, *, gguf_file: str | None = None) -> PreTrainedTokenizerFast:
    """Load a fast tokenizer (offsets are required for alignment) and fix it for encoding."""
    if gguf_file is not None:
        fields = gguf_tokenizer_fields(Path(name) / gguf_file)
        if is_spm(fields):
            return ensure_padding(build_spm_tokenizer(fields))
    tokenizer = AutoTokenizer.from_pretrained(str(name), gguf_file=gguf_file, use_fast=True)
    if not tokenizer.is_fast:
        raise ValueError(
            f"The tokenizer of '{name}' has no fast (Rust) implementation; spacy-lsllama needs "
            "character offsets, which only fast tokenizers provide."
        )
    if gguf_file is not None:
        apply_gguf_metadata(tokenizer, Path(name) / gguf_file)
    return ensure_padding(tokenizer)


def ensure_padding(tokenizer: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """Give the tokenizer a pad token (eos, else unk) and right padding."""
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ValueError(
                "The tokenizer has no pad, eos or unk token to pad with; add a pad token to "
                "the base model's tokenizer before using it with spacy-lsllama."
            )
        tokenizer.pad_token = fallback
    tokenizer.padding_side = "right"
    return tokenizer


def apply_gguf_metadata(tokenizer: PreTrainedTokenizerFast, gguf_path: Path) -> None:
    """Make special tokens and the BOS policy match what the GGUF file declares.

    transformers 4.53 builds e.g. SmolLM2's tokenizer with eos=<|im_start|> and a BOS that the
    GGUF says not to add; the GGUF metadata is the authority.
    """
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf_path)).fields
    for attr, key in GGUF_TOKEN_KEYS.items():
        if key in fields:
            token_id = int(fields[key].contents())
            setattr(tokenizer, attr, tokenizer.convert_ids_to_tokens(token_id))
    if "tokenizer.ggml.add_bos_token" in fields and hasattr(tokenizer, "add_bos_token"):
        tokenizer.add_bos_token = bool(fields["tokenizer.ggml.add_bos_token"].contents())
