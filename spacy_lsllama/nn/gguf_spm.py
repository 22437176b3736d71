"""Fast tokenizers for GGUF files whose tokenizer is SentencePiece (`tokenizer.ggml.model`
"llama"), built to tokenize exactly as llama.cpp does.

llama.cpp's SPM tokenizer starts from the characters of the text (spaces written as "▁") and
repeatedly merges the adjacent pair whose concatenation is a vocabulary token with the
highest score, leftmost first; characters that form no token become `<0xNN>` byte tokens.
The scores are merge priorities, so this is BPE whose merge ranks follow the merged token's
score. transformers 4.53 builds Gemma 2/3 GGUF tokenizers as Unigram models over those
scores instead, which splits "Obama" into `▁O ba ma` although `▁Obama` is a token.

User-defined tokens (newline and space runs, HTML tags) are cut out of the raw text first,
as llama.cpp does, and a space prefix is added to each remaining segment only when the file
sets `tokenizer.ggml.add_space_prefix` (Gemma: no).
"""

from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE
from transformers.tokenization_utils_fast import PreTrainedTokenizerFast

SPM_MODEL = "llama"
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "▁"
GGUF_TOKEN_KEYS = {
    "bos_token": "tokenizer.ggml.bos_token_id",
    "eos_token": "tokenizer.ggml.eos_token_id",
    "unk_token": "tokenizer.ggml.unknown_token_id",
    "pad_token": "tokenizer.ggml.padding_token_id",
}


def gguf_tokenizer_fields(gguf_path: Path) -> dict[str, Any]:
    """The `tokenizer.ggml.*` metadata of a GGUF file: arrays as lists, scalars as values.

    Read from the field parts directly: `contents()` takes seconds per 100k-token array.
    """
    from gguf import GGUFReader, GGUFValueType

    values: dict[str, Any] = {}
    for key, field in GGUFReader(str(gguf_path)).fields.items():
        if not key.startswith("tokenizer."):
            continue
        if field.types and field.types[0] == GGUFValueType.ARRAY:
            parts = [field.parts[index] for index in field.data]
            if field.types[-1] == GGUFValueType.STRING:
                values[key] = [bytes(part).decode("utf-8") for part in parts]
            else:
                values[key] = [part[0].item() for part in parts]
        else:
            values[key] = field.contents()
    return values


def is_spm(fields: dict[str, Any]) -> bool:
    """Whether llama.cpp tokenizes this file with its SentencePiece (score-merging) tokenizer."""
    return fields.get("tokenizer.ggml.model") == SPM_MODEL


def spm_merges(tokens: list[str], scores: list[float], types: list[int]) -> list[tuple[str, str]]:
    """Every split of a normal token into two vocabulary tokens, highest score first.

    Ranked like transformers' SentencePieceExtractor: by the merged token's score, then by
    the ids of the two halves.
    """
    ids = {token: i for i, token in enumerate(tokens)}
    ranked = []
    for i, token in enumerate(tokens):
        if types[i] != NORMAL:
            continue
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in ids and right in ids:
                ranked.append((-scores[i], ids[left], ids[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def build_spm_tokenizer(fields: dict[str, Any]) -> PreTrainedTokenizerFast:
    """A fast BPE tokenizer that reproduces llama.cpp's SPM tokenization of the GGUF vocab."""
    tokens = list(fields["tokenizer.ggml.tokens"])
    scores = [float(score) for score in fields["tokenizer.ggml.scores"]]
    types = [int(kind) for kind in fields["tokenizer.ggml.token_type"]]
    special = {
        attr: tokens[int(fields[key])] for attr, key in GGUF_TOKEN_KEYS.items() if key in fields
    }
    model = BPE(
        vocab={token: i for i, token in enumerate(tokens)},
        merges=spm_merges(tokens, scores, types),
        unk_token=special.get("unk_token"),
        byte_fallback=BYTE in types,
        fuse_unk=True,
    )
    tokenizer = Tokenizer(model)
    space_prefix = bool(fields.get("tokenizer.ggml.add_space_prefix", True))
    steps = [normalizers.Prepend(SPACE)] if space_prefix else []
    tokenizer.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", SPACE)])
    decoding = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if space_prefix:
        decoding.append(decoders.Strip(content=" ", left=1))
    tokenizer.decoder = decoders.Sequence(decoding)
    # Cut out of the raw text before anything else, as llama.cpp does; control tokens count
    # as special (skipped when decoding), user-defined ones as text.
    tokenizer.add_tokens(
        [
            AddedToken(token, normalized=False, special=types[i] != USER_DEFINED)
            for i, token in enumerate(tokens)
            if types[i] in (CONTROL, USER_DEFINED)
        ]
    )
    tokenizer.post_processor = _template(fields, special)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special)


def _template(fields: dict[str, Any], special: dict[str, str]) -> processors.TemplateProcessing:
    """BOS and EOS around each sequence as the file's `add_bos_token` / `add_eos_token` say
    (llama.cpp's defaults for SPM: BOS yes, EOS no)."""
    before: list[str] = []
    after: list[str] = []
    used: list[tuple[str, int]] = []
    for attr, key, default, side in (
        ("bos_token", "tokenizer.ggml.add_bos_token", True, before),
        ("eos_token", "tokenizer.ggml.add_eos_token", False, after),
    ):
        if bool(fields.get(key, default)) and attr in special:
            side.append(special[attr])
            used.append((special[attr], int(fields[GGUF_TOKEN_KEYS[attr]])))
    return processors.TemplateProcessing(
        single=" ".join([*before, "$A", *after]),
        pair=" ".join([*before, "$A", *after, *before, "$B:1", *after]),
        special_tokens=used,
    )
