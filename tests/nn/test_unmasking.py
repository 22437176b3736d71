"""LS-unLLaMA vs LS-LLaMA: what each token can see, and that padding never leaks in."""

import numpy
import pytest
import torch

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.nn.encoder import EncoderSettings
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


def layer_outputs(nlp, text: str) -> list[numpy.ndarray]:
    """Each decoder layer's output states for one text (prediction)."""
    layers = get_encoder(nlp.get_pipe("llm").model).decoder.layers
    outputs: list[numpy.ndarray] = []

    def keep(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        outputs.append(hidden[0].detach().numpy().copy())

    handles = [layer.register_forward_hook(keep) for layer in layers]
    list(nlp.pipe([text]))
    for handle in handles:
        handle.remove()
    return outputs


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(
    "unmasked_layers,block",
    [("middle 2", range(2, 4)), ("top 2", range(4, 6)), ("1:3", range(1, 3))],
)
def test_only_layers_from_the_unmasked_block_up_see_later_tokens(
    deep_arch_dirs, arch, unmasked_layers, block
):
    nlp = encoder_nlp(deep_arch_dirs[arch], unmasked_layers=unmasked_layers)
    first = layer_outputs(nlp, "Obama visited Paris")
    changed = layer_outputs(nlp, "Obama visited Tokyo")
    n_same = 2  # 'Obama', ' visited' are the same pieces in both texts
    sees_later = [
        not numpy.allclose(a[:n_same], b[:n_same], atol=1e-6) for a, b in zip(first, changed)
    ]
    assert sees_later == [index >= block.start for index in range(6)]


@pytest.mark.parametrize("arch", ARCHS)
def test_each_layer_gets_a_causal_mask_unless_in_the_unmasked_block(deep_arch_dirs, arch):
    nlp = encoder_nlp(deep_arch_dirs[arch], unmasked_layers="middle 2")
    layers = get_encoder(nlp.get_pipe("llm").model).decoder.layers
    masks: dict[int, torch.Tensor] = {}

    def keep_mask(index: int):
        def hook(module, args, kwargs) -> None:
            masks.setdefault(index, kwargs["attention_mask"])

        return hook

    handles = [
        layer.register_forward_pre_hook(keep_mask(i), with_kwargs=True)
        for i, layer in enumerate(layers)
    ]
    list(nlp.pipe(["Obama visited Paris and Berlin"]))
    for handle in handles:
        handle.remove()
    assert sorted(masks) == list(range(6))
    for index, mask in masks.items():
        later = torch.ones(mask.shape[-2:], dtype=torch.bool).triu(diagonal=1)
        blocked_later = bool((mask[0, 0][later] < 0).all())
        sees_later = bool((mask[0, 0] == 0).all())
        assert (blocked_later, sees_later) == ((False, True) if index in (2, 3) else (True, False))


def test_bidirectional_false_with_an_unmasked_block_is_a_config_error():
    with pytest.raises(ValueError, match="set one of them, not both"):
        EncoderSettings(name="model", bidirectional=False, unmasked_layers="top 2")


@pytest.mark.parametrize("bidirectional", [True, False])
def test_flash_attention_is_refused_in_either_mode(bidirectional):
    with pytest.raises(ValueError, match="must be 'sdpa' or 'eager', not 'flash_attention_2'"):
        EncoderSettings(
            name="model", bidirectional=bidirectional, attn_implementation="flash_attention_2"
        )


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_encoder_states_equal_the_decoder_run_by_transformers(tiny_arch_dirs, arch, bidirectional):
    """The encoder runs the layers itself; for one window it computes what transformers'
    own forward does (causal: as is; unmasked: with a mask that blocks nothing)."""
    nlp = encoder_nlp(tiny_arch_dirs[arch], bidirectional=bidirectional, lora=None)
    (ours,) = piece_states(nlp, ["Apple opened offices in London and Berlin."])
    encoder = get_encoder(nlp.get_pipe("llm").model)
    ids = torch.tensor(
        [encoder.tokenizer("Apple opened offices in London and Berlin.")["input_ids"]]
    )
    decoder = encoder.model  # no LoRA: the transformers decoder itself
    n = ids.shape[1]
    with torch.no_grad():
        if bidirectional:
            mask = torch.zeros((1, 1, n, n), dtype=decoder.dtype)
            theirs = decoder(input_ids=ids, attention_mask=mask).last_hidden_state[0]
        else:
            theirs = decoder(input_ids=ids).last_hidden_state[0]
    numpy.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-5)
