"""LS-unLLaMA vs LS-LLaMA: what each token can see, and that padding never leaks in."""

import numpy
import pytest

from spacy_lsllama.testing import encoder_nlp

ARCHS = ["llama", "mistral", "qwen2"]
ATTENTION = ["sdpa", "eager"]


def piece_states(nlp, texts):
    return [doc._.trf_data.model_output.last_hidden_state[0] for doc in nlp.pipe(texts)]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("attention", ATTENTION)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_later_tokens_reach_earlier_ones_only_when_bidirectional(
    tiny_arch_dirs, arch, attention, bidirectional
):
    nlp = encoder_nlp(
        tiny_arch_dirs[arch], bidirectional=bidirectional, attn_implementation=attention
    )
    first, changed = piece_states(nlp, ["Obama visited Paris", "Obama visited Tokyo"])
    n_same = 2  # 'Obama', ' visited' are the same pieces in both texts
    differs = not numpy.allclose(first[:n_same], changed[:n_same], atol=1e-6)
    assert differs == bidirectional


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("attention", ATTENTION)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_padded_batch_equals_each_doc_alone(tiny_arch_dirs, arch, attention, bidirectional):
    nlp = encoder_nlp(
        tiny_arch_dirs[arch], bidirectional=bidirectional, attn_implementation=attention
    )
    texts = ["Paris", "Apple opened offices in London, New York and Tokyo on Tuesday."]
    batched = piece_states(nlp, texts)
    for text, together in zip(texts, batched):
        (alone,) = piece_states(nlp, [text])
        n = len(alone)
        numpy.testing.assert_allclose(together[:n], alone, atol=1e-5)
