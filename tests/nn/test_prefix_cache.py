"""The frozen-prefix cache: exact (same states, loss and gradients), bounded, training-only."""

import random

import pytest
import spacy
import torch
from spacy.training import Example

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.nn.prefix_cache import PrefixCache, window_key
from spacy_lsllama.testing import encoder_nlp

LORA = {"@misc": "spacy-lsllama.LoRA.v2", "r": 4, "dropout": 0.0, "layers": "top 2"}
# window 16 / stride 12: the long document runs as several windows; the rest are packed
TEXTS = [
    "Barack Obama visited Paris and Berlin with Angela Merkel last week, and then he flew "
    "on to London, New York and Tokyo for talks with Apple and Google.",
    "Apple opened offices.",
    "Shares of Microsoft rose.",
    "Paris",
    "Apple opened offices.",
]


def encoder_pair(model_dir, **settings):
    """Two encoders with the same (non-zero) adapters: frozen-prefix cache on and off."""
    pair = []
    for cache_mb in (64, 0):
        nlp = encoder_nlp(
            model_dir, lora=LORA, window=16, stride=12, prefix_cache_mb=cache_mb, **settings
        )
        encoder = get_encoder(nlp.get_pipe("llm").model)
        with torch.no_grad():
            for name, param in encoder.named_parameters():
                if "lora_B" in name:
                    param.normal_(std=0.5)
        pair.append((nlp, encoder))
    pair[1][1].load_state_dict(pair[0][1].state_dict())
    return pair


def batch_inputs(nlp, texts):
    """The encoder's tensor inputs for a batch of texts, as the thinc layer builds them."""
    from spacy_lsllama.layers.alignment import batch_pieces, encode_docs

    encoder = get_encoder(nlp.get_pipe("llm").model)
    batch = batch_pieces(
        encode_docs(encoder.tokenizer, [nlp.make_doc(t) for t in texts]),
        window=16,
        stride=12,
        pad_id=encoder.tokenizer.pad_token_id,
    )
    arrays = (batch.window_ids, batch.window_mask, batch.gather, batch.keep)
    return [torch.as_tensor(a) for a in arrays]


def loss_and_gradients(encoder, inputs):
    out = encoder(*inputs)
    torch.manual_seed(1)
    loss = (out * torch.randn(out.shape)).sum()
    params = [p for name, p in encoder.named_parameters() if "lora_" in name]
    return loss.detach(), torch.autograd.grad(loss, params)


def assert_same(a, b):
    (loss_a, grads_a), (loss_b, grads_b) = a, b
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-4)
    for x, y in zip(grads_a, grads_b, strict=True):
        assert float((x - y).norm() / y.norm()) < 1e-5


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("unmasked_layers", ["all", "none", "top 2"])
def test_cached_steps_give_the_loss_and_gradients_of_uncached_ones(
    deep_arch_dirs, arch, unmasked_layers
):
    (nlp, cached), (_, plain) = encoder_pair(deep_arch_dirs[arch], unmasked_layers=unmasked_layers)
    assert cached.frozen_layers == 4 and cached.prefix_cache is not None
    assert plain.prefix_cache is None
    inputs = batch_inputs(nlp, TEXTS)
    expected = loss_and_gradients(plain, inputs)
    assert_same(loss_and_gradients(cached, inputs), expected)  # computes and caches
    n_windows = len({window_key(ids[: int(m.sum())]) for ids, m in zip(inputs[0], inputs[1])})
    assert len(cached.prefix_cache) == n_windows
    assert_same(loss_and_gradients(cached, inputs), expected)  # all from the cache
    assert cached.prefix_cache.hits >= n_windows
    # another batch: the cached windows packed with other rows, in another order
    shuffled = TEXTS[1:3] + ["Angela Merkel"] + TEXTS[:1]
    inputs = batch_inputs(nlp, shuffled)
    assert_same(loss_and_gradients(cached, inputs), loss_and_gradients(plain, inputs))


def test_prediction_caches_nothing_unless_asked(deep_arch_dirs):
    (nlp, cached), _ = encoder_pair(deep_arch_dirs["llama"])
    list(nlp.pipe(TEXTS))
    assert len(cached.prefix_cache) == 0
    (nlp, asked), (plain_nlp, _) = encoder_pair(deep_arch_dirs["llama"], prefix_cache_predict=True)
    states = [d._.trf_data.model_output.last_hidden_state for d in nlp.pipe(TEXTS)]
    assert len(asked.prefix_cache) > 0
    again = [d._.trf_data.model_output.last_hidden_state for d in nlp.pipe(TEXTS)]
    plain = [d._.trf_data.model_output.last_hidden_state for d in plain_nlp.pipe(TEXTS)]
    for a, b, c in zip(states, again, plain, strict=True):
        torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(c), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(torch.as_tensor(b), torch.as_tensor(c), rtol=1e-4, atol=1e-5)


def test_a_full_cache_warns_once_and_stays_exact(deep_arch_dirs):
    (nlp, cached), (_, plain) = encoder_pair(deep_arch_dirs["llama"])
    cached.prefix_cache = PrefixCache(budget_mb=1)
    cached.prefix_cache.put(b"filler", torch.zeros(2**18 - 64))  # leaves room for nothing
    inputs = batch_inputs(nlp, TEXTS)
    with pytest.warns(UserWarning, match="cache is full"):
        assert_same(loss_and_gradients(cached, inputs), loss_and_gradients(plain, inputs))
    assert len(cached.prefix_cache) == 1


def test_cache_budget_counts_each_window_once():
    cache = PrefixCache(budget_mb=1)
    states = torch.zeros(1024, 64)  # 256 KiB
    assert all(cache.put(key, states) for key in (b"a", b"b", b"a", b"c", b"d"))
    assert cache.used == 4 * states.numel() * 4 and len(cache) == 4
    with pytest.warns(UserWarning, match="1 MB, 4 windows"):
        assert not cache.put(b"e", states)
    assert cache.get(b"e") is None and cache.get(b"a") is not None


def ner_pipeline(model_dir, cache_mb: int):
    spacy.util.fix_random_seed(0)
    nlp = encoder_nlp(model_dir, lora=LORA, prefix_cache_mb=cache_mb, unmasked_layers="top 2")
    ner = nlp.add_pipe("lsllama_ner", config={"model": {"tok2vec": {"upstream": "llm"}}})
    examples = [
        Example.from_dict(nlp.make_doc(text), {"entities": ents})
        for text, ents in [
            ("Obama visited Paris", [(0, 5, "PER"), (14, 19, "LOC")]),
            ("Apple opened offices in London", [(0, 5, "ORG"), (24, 30, "LOC")]),
            ("Merkel met Obama", [(0, 6, "PER"), (11, 16, "PER")]),
        ]
    ]
    ner.initialize(lambda: examples, nlp=nlp)
    return nlp, examples


def test_spacy_updates_with_shuffling_and_accumulation_match_uncached(deep_arch_dirs):
    """What `spacy train` does (shuffled batches, accumulate_gradient = 2) trains the same
    weights with the cache as without."""
    weights = []
    for cache_mb in (64, 0):
        nlp, examples = ner_pipeline(deep_arch_dirs["llama"], cache_mb)
        optimizer = spacy.util.registry.optimizers.get("Adam.v1")(0.01)
        order = random.Random(3)
        for _ in range(3):
            order.shuffle(examples)
            for half in (examples[:2], examples[2:]):
                nlp.update(half, drop=0.0, sgd=None)
            nlp.get_pipe("llm").finish_update(optimizer)
            nlp.get_pipe("lsllama_ner").finish_update(optimizer)
        encoder = get_encoder(nlp.get_pipe("llm").model)
        weights.append({k: v.clone() for k, v in encoder.named_parameters() if "lora_" in k})
    cached, plain = weights
    assert cached.keys() == plain.keys()
    for key in plain:
        torch.testing.assert_close(cached[key], plain[key], rtol=1e-4, atol=1e-6)
    assert any(float(v.detach().abs().sum()) > 0 for k, v in cached.items() if "lora_B" in k)


def test_a_prefix_of_every_layer_gives_the_states_of_the_full_forward_pass(deep_arch_dirs):
    """Without LoRA every layer is frozen: the cache holds the top layer's states and the
    final norm is applied once, as in prediction."""
    encoders = []
    for cache_mb in (64, 0):
        nlp = encoder_nlp(
            deep_arch_dirs["llama"], lora=None, window=16, stride=12, prefix_cache_mb=cache_mb
        )
        encoders.append(get_encoder(nlp.get_pipe("llm").model))
    cached, plain = encoders
    assert cached.frozen_layers == 6 and cached.prefix_cache is not None
    inputs = batch_inputs(nlp, TEXTS)
    expected = plain(*inputs)
    torch.testing.assert_close(cached(*inputs), expected, rtol=1e-5, atol=1e-5)  # computed
    torch.testing.assert_close(cached(*inputs), expected, rtol=1e-5, atol=1e-5)  # cached
    assert cached.prefix_cache.hits > 0
