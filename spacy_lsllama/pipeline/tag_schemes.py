"""Constrained Viterbi decoding of BIO and BILUO tags into valid spans.

A per-token argmax can produce `O I-PER` or `B-PER I-LOC`; decoding under the scheme's
transition constraints returns the most probable tag sequence that is always a valid set of
spans. The schemes themselves (tag names, conversions, span decoding) live in
`spacy_lsllama.corpora.schemes`, shared with the corpus readers and the scorers.
"""

from collections.abc import Sequence

import numpy

from ..corpora.schemes import biluo_to_scheme, scheme_to_spans, tag_names

__all__ = [
    "biluo_to_scheme",
    "boundary_masks",
    "scheme_to_spans",
    "tag_names",
    "transition_mask",
    "viterbi",
]


def _split(tag: str) -> tuple[str, str]:
    prefix, _, label = tag.partition("-")
    return prefix, label


def _allowed(prev: str, curr: str, scheme: str) -> bool:
    prev_prefix, prev_label = _split(prev)
    curr_prefix, curr_label = _split(curr)
    inside = prev_prefix in ("B", "I")
    if scheme == "BIO":
        return curr_prefix != "I" or (inside and prev_label == curr_label)
    if inside:
        return curr_prefix in ("I", "L") and prev_label == curr_label
    return curr_prefix in ("O", "B", "U")


def transition_mask(tags: Sequence[str], scheme: str) -> numpy.ndarray:
    """(prev, curr) boolean matrix of allowed transitions."""
    return numpy.asarray([[_allowed(p, c, scheme) for c in tags] for p in tags])


def boundary_masks(tags: Sequence[str], scheme: str) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Tags allowed at the first and at the last position."""
    prefixes = numpy.asarray([tag[0] for tag in tags])
    if scheme == "BIO":
        return prefixes != "I", numpy.ones(len(tags), dtype=bool)
    return numpy.isin(prefixes, ["O", "B", "U"]), numpy.isin(prefixes, ["O", "L", "U"])


def viterbi(
    log_probs: numpy.ndarray, allowed: numpy.ndarray, start: numpy.ndarray, end: numpy.ndarray
) -> numpy.ndarray:
    """Best tag indices for (tokens, tags) log-probabilities under the constraints."""
    n_tokens, n_tags = log_probs.shape
    if n_tokens == 0:
        return numpy.zeros((0,), dtype="int64")
    blocked = numpy.where(allowed, 0.0, -numpy.inf)
    score = numpy.where(start, log_probs[0], -numpy.inf)
    history = numpy.zeros((n_tokens, n_tags), dtype="int64")
    for i in range(1, n_tokens):
        candidates = score[:, None] + blocked
        history[i] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[i]
    score = numpy.where(end, score, -numpy.inf)
    best = numpy.zeros(n_tokens, dtype="int64")
    best[-1] = int(score.argmax())
    for i in range(n_tokens - 1, 0, -1):
        best[i - 1] = history[i, best[i]]
    return best
