"""llama.cpp's SentencePiece tokenizer (`llm_tokenizer_spm` in src/llama-vocab.cpp), in plain
Python, as the reference the fast tokenizers built from GGUF files are checked against.

Plain text only (llama.cpp's `parse_special = false`): user-defined tokens are cut out of the
raw text, longest first; each remaining fragment gets a space prefix if the file asks for one
and the fragment starts the text or follows a cut-out token; spaces become "▁"; adjacent
symbols are merged while some adjacent pair concatenates to a token, highest score first and
leftmost among equals; symbols that are no token become `<0xNN>` byte tokens.
"""

import heapq
from typing import Any

USER_DEFINED = 4


class SpmReference:
    """Tokenize like llama.cpp from GGUF `tokenizer.ggml.*` fields."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.tokens = list(fields["tokenizer.ggml.tokens"])
        self.scores = [float(score) for score in fields["tokenizer.ggml.scores"]]
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        types = fields["tokenizer.ggml.token_type"]
        user = [i for i, kind in enumerate(types) if kind == USER_DEFINED]
        self.cut_out = sorted(user, key=lambda i: -len(self.tokens[i].encode()))
        self.space_prefix = bool(fields.get("tokenizer.ggml.add_space_prefix", True))
        add_bos = bool(fields.get("tokenizer.ggml.add_bos_token", True))
        self.bos = [int(fields["tokenizer.ggml.bos_token_id"])] if add_bos else []

    def encode(self, text: str) -> list[int]:
        output = list(self.bos)
        fragments: list[str | int] = [text] if text else []
        for token_id in self.cut_out:
            fragments = [part for fragment in fragments for part in self._cut(fragment, token_id)]
        after_token = True
        for fragment in fragments:
            if isinstance(fragment, int):
                output.append(fragment)
                after_token = True
                continue
            prefix = " " if self.space_prefix and after_token else ""
            output.extend(self._merge((prefix + fragment).replace(" ", "▁")))
            after_token = False
        return output

    def _cut(self, fragment: str | int, token_id: int) -> list[str | int]:
        if isinstance(fragment, int):
            return [fragment]
        pieces = fragment.split(self.tokens[token_id])
        parts: list[str | int] = []
        for i, piece in enumerate(pieces):
            if i:
                parts.append(token_id)
            if piece:
                parts.append(piece)
        return parts

    def _merge(self, text: str) -> list[int]:
        symbols = list(text)  # merged-away symbols become ""
        following = list(range(1, len(symbols))) + [-1]
        preceding = list(range(-1, len(symbols) - 1))
        queue: list[tuple[float, int, int, int]] = []
        split: dict[str, tuple[str, str]] = {}

        def push(left: int, right: int) -> None:
            if left == -1 or right == -1:
                return
            joined = symbols[left] + symbols[right]
            if joined in self.ids:
                heapq.heappush(queue, (-self.scores[self.ids[joined]], left, right, len(joined)))
                split[joined] = (symbols[left], symbols[right])

        for i in range(1, len(symbols)):
            push(i - 1, i)
        while queue:
            _, left, right, size = heapq.heappop(queue)
            if not symbols[left] or not symbols[right]:
                continue
            if len(symbols[left]) + len(symbols[right]) != size:
                continue
            symbols[left] += symbols[right]
            symbols[right] = ""
            following[left] = following[right]
            if following[right] >= 0:
                preceding[following[right]] = left
            push(preceding[left], left)
            push(left, following[left])
        output: list[int] = []
        i = 0 if symbols else -1
        while i != -1:
            self._resegment(symbols[i], split, output)
            i = following[i]
        return output

    def _resegment(self, text: str, split: dict[str, tuple[str, str]], output: list[int]) -> None:
        if text in self.ids:
            output.append(self.ids[text])
        elif text in split:
            for part in split[text]:
                self._resegment(part, split, output)
        else:
            output.extend(self.ids[f"<0x{byte:02X}>"] for byte in text.encode())
