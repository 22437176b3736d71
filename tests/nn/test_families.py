"""Decoder families: the encoder reproduces each supported family's own forward pass exactly,
adapts the projections LoRA names in it, and refuses every other family."""

import numpy
import pytest
import spacy
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.tokenization_utils_fast import PreTrainedTokenizerFast

from spacy_lsllama.layers.alignment import encode_docs
from spacy_lsllama.nn import encoder as encoder_module
from spacy_lsllama.nn.base_model import BaseModel
from spacy_lsllama.nn.encoder import EncoderSettings, LlamaEncoder, build_encoder
from spacy_lsllama.nn.families import FAMILIES
from spacy_lsllama.nn.lora import LLAMA_ATTENTION, LLAMA_MLP, LoraSettings
from spacy_lsllama.nn.unmasking import segment_mask_4d
from spacy_lsllama.testing import TRAINING_TEXT, encoder_nlp

WINDOW = 4  # the sliding window, shorter than most test inputs
N_LAYERS = 4
COMMON = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": N_LAYERS,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 256,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
# What makes each family differ from Llama, set so that it shows in 4 layers: a window of 4
# (Qwen: in the top two layers only; Gemma 2/3: alternating), Granite's multiplier.
SLIDING = ["sliding_attention", "full_attention"] * (N_LAYERS // 2)
OVERRIDES: dict[str, dict] = {
    "llama": {
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        }
    },
    "mistral": {"sliding_window": WINDOW},
    "qwen2": {"use_sliding_window": True, "sliding_window": WINDOW, "max_window_layers": 2},
    "qwen3": {"use_sliding_window": True, "sliding_window": WINDOW, "max_window_layers": 2},
    "olmo2": {},
    "cohere": {},
    "stablelm": {},
    "starcoder2": {"sliding_window": WINDOW},
    "phi3": {"sliding_window": WINDOW},
    "gemma": {},
    "gemma2": {"sliding_window": WINDOW, "query_pre_attn_scalar": 16},
    "gemma3_text": {
        "sliding_window": WINDOW,
        "layer_types": SLIDING,
        "query_pre_attn_scalar": 16,
        "rope_scaling": {"rope_type": "linear", "factor": 8.0},
    },
    "granite": {"embedding_multiplier": 12.0},
    "falcon": {"head_dim": None},  # a property there
}
LENGTHS = [1, 3, WINDOW, WINDOW + 1, 11, 17]


def tiny_model(model_type: str, attention: str = "sdpa", **overrides) -> PreTrainedModel:
    """A tiny random decoder of the family, frozen as `load_base_model` leaves it."""
    torch.manual_seed(0)
    settings = {**COMMON, **OVERRIDES.get(model_type, {}), **overrides}
    settings = {key: value for key, value in settings.items() if value is not None}
    config = AutoConfig.for_model(model_type, **settings)
    model = AutoModel.from_config(config, attn_implementation=attention).eval()
    return model.requires_grad_(False)


def tiny_encoder(model: PreTrainedModel, **settings) -> LlamaEncoder:
    base = BaseModel(model=model, tokenizer=None, sha256="", name=model.config.model_type)  # type: ignore[arg-type]
    settings = {"lora": None, "unmasked_layers": "none", "rows_per_forward": 8, **settings}
    encoder = build_encoder(EncoderSettings(name=base.name, **settings), base)
    return encoder.eval()


def padded(docs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The docs as one window each, right-padded: the encoder's input_ids, attention_mask,
    gather and keep."""
    width = max(len(doc) for doc in docs)
    ids = torch.zeros((len(docs), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, doc in enumerate(docs):
        ids[i, : len(doc)], mask[i, : len(doc)] = doc, 1
    return ids, mask, torch.arange(ids.numel()).view(ids.shape), mask.float()


def encode(encoder: LlamaEncoder, docs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each doc's states from one call (no gradients)."""
    with torch.no_grad():
        states = encoder(*padded(docs))
    return [states[i, : len(doc)] for i, doc in enumerate(docs)]


def own_forward(model: PreTrainedModel, doc: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(doc[None], use_cache=False).last_hidden_state[0]


def random_docs(lengths: list[int]) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(3, COMMON["vocab_size"], (n,), generator=generator) for n in lengths]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_causal_encoder_equals_the_models_own_forward(model_type, attention):
    """Packed with padding (short docs share rows) and each doc alone, below and beyond the
    sliding window: the encoder's causal states are the model's own."""
    model = tiny_model(model_type, attention)
    encoder = tiny_encoder(model, attn_implementation=attention)
    docs = random_docs(LENGTHS)
    expected = [own_forward(model, doc) for doc in docs]
    packed = encode(encoder, docs)
    for doc, states, own in zip(docs, packed, expected):
        # packed rows multiply in other shapes: rounding differs by about 1e-6 of the states
        torch.testing.assert_close(states, own, rtol=1e-5, atol=1e-5, msg=f"packed, {len(doc)}")
        (alone,) = encode(encoder, [doc])
        torch.testing.assert_close(alone, own, rtol=0, atol=1e-5, msg=f"alone, {len(doc)}")


@pytest.mark.parametrize("model_type", ["gemma2", "gemma3_text", "granite", "qwen2"])
def test_frozen_prefix_cache_keeps_each_family_exact(model_type):
    """The frozen lower layers' states, computed once and then cached, go on through the
    upper layers as in the model's own pass (embedding scale, windows, rotary tables)."""
    model = tiny_model(model_type)
    docs = random_docs(LENGTHS)
    expected = [own_forward(model, doc) for doc in docs]
    lora = LoraSettings(r=2, dropout=0.0, layers="top 2")  # lora_B is zero: no change yet
    encoder = tiny_encoder(model, lora=lora, prefix_cache_mb=16, prefix_cache_predict=True)
    assert encoder.frozen_layers == 2 and encoder.prefix_cache is not None
    for _ in range(2):  # computed, then read from the cache
        for states, own in zip(encode(encoder, docs), expected):
            torch.testing.assert_close(states, own, rtol=1e-5, atol=1e-5)
    assert encoder.prefix_cache.hits == len(docs)


def test_every_kind_of_window_occurs_in_the_parity_models():
    """The parity models mix layers with and without the window where the family does."""
    windows = {
        model_type: tiny_encoder(tiny_model(model_type)).decoder.windows
        for model_type in ("qwen2", "gemma2", "gemma3_text", "mistral", "llama")
    }
    assert windows["qwen2"] == [None, None, WINDOW, WINDOW]
    assert windows["gemma2"] == windows["gemma3_text"] == [WINDOW, None, WINDOW, None]
    assert windows["mistral"] == [WINDOW] * N_LAYERS
    assert windows["llama"] == [None] * N_LAYERS


@pytest.mark.parametrize("unmasked_layers,n_masks", [("none", 2), ("top 1", 3), ("all", 1)])
def test_one_mask_per_kind_of_layer_per_chunk(monkeypatch, unmasked_layers, n_masks):
    """Gemma 3: one causal mask for its sliding layers, one for its full ones, one for all
    unmasked layers."""
    built: list[int | None] = []

    def counted(*args, sliding_window=None, **kwargs):
        built.append(sliding_window)
        return segment_mask_4d(*args, sliding_window=sliding_window, **kwargs)

    monkeypatch.setattr(encoder_module, "segment_mask_4d", counted)
    encoder = tiny_encoder(tiny_model("gemma3_text"), unmasked_layers=unmasked_layers)
    encode(encoder, random_docs([WINDOW + 3]))
    assert len(built) == n_masks
    assert (WINDOW in built) == (unmasked_layers != "all")


def test_qwen_without_use_sliding_window_slides_nowhere():
    encoder = tiny_encoder(tiny_model("qwen2", use_sliding_window=False))
    assert encoder.decoder.windows == [None] * N_LAYERS


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_unmasking_the_top_layer_changes_only_what_earlier_positions_see(model_type):
    """The last piece of a window sees the same keys unmasked as causal (within the window
    here), so only the states of the pieces before it change."""
    model = tiny_model(model_type)
    (doc,) = random_docs([WINDOW])
    (causal,) = encode(tiny_encoder(model), [doc])
    (unmasked,) = encode(tiny_encoder(model, unmasked_layers="top 1"), [doc])
    torch.testing.assert_close(unmasked[-1], causal[-1], rtol=0, atol=1e-5)
    for position in range(WINDOW - 1):
        assert not torch.allclose(unmasked[position], causal[position], atol=1e-4), position


@pytest.mark.parametrize("targets", [LLAMA_ATTENTION, [*LLAMA_ATTENTION, *LLAMA_MLP]])
@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_lora_adapts_every_projection_the_targets_name(model_type, targets):
    """Targets given in Llama's terms reach the family's own projections (Phi-3's fused
    qkv_proj and gate_up_proj, Starcoder2's c_fc and c_proj), in every layer."""
    model = tiny_model(model_type)
    projections = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    family_targets = FAMILIES[model_type].lora_targets(targets)
    assert set(family_targets) <= projections
    encoder = tiny_encoder(model, lora=LoraSettings(r=2, target_modules=list(targets)))
    adapted = [name for name, _ in encoder.model.named_modules() if name.endswith(".lora_A")]
    assert len(adapted) == N_LAYERS * len(family_targets)
    for target in family_targets:
        assert sum(f".{target}.lora_A" in name for name in adapted) == N_LAYERS, target


def test_phi3_attention_targets_adapt_the_fused_qkv_projection():
    assert FAMILIES["phi3"].lora_targets(LLAMA_ATTENTION) == ["qkv_proj", "o_proj"]
    assert FAMILIES["phi3"].lora_targets(LLAMA_MLP) == ["gate_up_proj", "down_proj"]


def test_lora_targets_that_name_no_module_are_refused():
    with pytest.raises(ValueError, match=r"\['w1'\] name no module of this llama decoder"):
        tiny_encoder(tiny_model("llama"), lora=LoraSettings(r=2, target_modules=["q_proj", "w1"]))


@pytest.mark.parametrize("model_type", ["gpt_neox", "falcon", "mixtral"])
def test_unsupported_families_are_refused_naming_the_supported_ones(model_type):
    model = tiny_model(model_type)
    with pytest.raises(ValueError, match=f"'{model_type}' are not supported.*gemma3_text, "):
        tiny_encoder(model)


def test_gemma3_text_trains_a_lora_step_with_finite_gradients():
    """Unmasked, packed, LoRA on every projection: gradients reach every adapter, finite,
    and a step changes the states."""
    model = tiny_model("gemma3_text")
    lora = LoraSettings(r=2, dropout=0.0, target_modules=[*LLAMA_ATTENTION, *LLAMA_MLP])
    encoder = tiny_encoder(model, lora=lora, unmasked_layers="all").train()
    docs = random_docs([3, WINDOW + 3, 11])
    before = encode(encoder, docs)
    adapters = {name: p for name, p in encoder.named_parameters() if p.requires_grad}
    assert len(adapters) == 2 * N_LAYERS * 7
    optimizer = torch.optim.SGD(adapters.values(), lr=0.1)
    for _ in range(2):  # lora_B starts at zero: the second step moves lora_A too
        optimizer.zero_grad()
        with torch.enable_grad():
            encoder(*padded(docs)).pow(2).mean().backward()
        for name, param in adapters.items():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
        optimizer.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters.values())
    after = encode(encoder, docs)
    assert not torch.allclose(after[-1], before[-1])


def sentencepiece_tokenizer() -> PreTrainedTokenizerFast:
    """A Metaspace BPE tokenizer that adds BOS to every text, as Gemma's and Llama 2's do."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"]
    )
    tokenizer.train_from_iterator(TRAINING_TEXT, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tokenizer.token_to_id("<bos>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


BOS_TEXTS = ["Barack Obama visited Paris.", "Apple opened offices in London and Berlin."]


def test_bos_is_aligned_to_no_token_and_each_token_to_its_own_pieces():
    tokenizer = sentencepiece_tokenizer()
    nlp = spacy.blank("en")
    docs = [nlp.make_doc(text) for text in BOS_TEXTS]
    for doc, pieces in zip(docs, encode_docs(tokenizer, docs)):
        assert pieces.ids[0] == tokenizer.bos_token_id
        offsets = tokenizer(doc.text, return_offsets_mapping=True)["offset_mapping"]
        for token, aligned in zip(doc, pieces.token_pieces):
            assert 0 not in aligned
            text = "".join(doc.text[slice(*offsets[i])] for i in aligned)
            assert text.strip() == token.text


def test_bos_state_is_pooled_into_no_token_vector(tmp_path):
    """Through a Gemma 3 pipeline whose tokenizer adds BOS: the alignment skips BOS."""
    tokenizer = sentencepiece_tokenizer()
    model = tiny_model("gemma3_text", vocab_size=len(tokenizer))
    model.save_pretrained(tmp_path / "gemma3", safe_serialization=True)
    tokenizer.save_pretrained(tmp_path / "gemma3")
    nlp = encoder_nlp(tmp_path / "gemma3", dtype="float32", window=WINDOW * 2, stride=WINDOW * 2)
    for doc in nlp.pipe(BOS_TEXTS):
        data = doc._.trf_data
        assert data.wordpieces.input_ids[0][0] == tokenizer.bos_token_id
        aligned = numpy.asarray(data.align.dataXd)
        assert 0 not in aligned and len(data.align) == len(doc)
