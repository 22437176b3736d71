"""LoRA: only adapters train, the base stays frozen, and adapters load strictly."""

import pytest
import spacy
import torch
from spacy.training import Example

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.nn.encoder import EncoderSettings, build_encoder
from spacy_lsllama.nn.lora import (
    LLAMA_ATTENTION,
    LLAMA_MLP,
    LoraSettings,
    adapter_state,
    load_adapter_state,
)
from spacy_lsllama.testing import NER_CONFIG


def test_only_lora_parameters_train(tiny_model_dir):
    encoder = build_encoder(EncoderSettings(name=str(tiny_model_dir), lora=LoraSettings(r=4)))
    trainable = [name for name, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    # q, k, v, o in each of 2 layers, A and B each
    assert len(trainable) == 2 * 4 * 2


def test_no_lora_freezes_the_whole_decoder(tiny_model_dir):
    encoder = build_encoder(EncoderSettings(name=str(tiny_model_dir), lora=None))
    assert not any(p.requires_grad for p in encoder.parameters())


def test_updates_move_the_adapter_and_not_the_base(tiny_model_dir):
    nlp = spacy.util.load_model_from_config(
        spacy.util.load_config_from_str(NER_CONFIG.replace("{name}", str(tiny_model_dir))),
        auto_fill=True,
    )
    examples = [
        Example.from_dict(nlp.make_doc("Obama visited Paris"), {"entities": [(0, 5, "PER")]})
    ]
    optimizer = nlp.initialize(lambda: examples)
    encoder = get_encoder(nlp.get_pipe("llm").model)
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    for _ in range(3):  # the parser's output layer starts at zero: step 1 sends no gradient
        nlp.update(examples, sgd=optimizer)
    after = encoder.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("lora_" in k for k in changed)


def test_adapter_with_other_rank_is_refused(tiny_model_dir):
    rank4 = build_encoder(EncoderSettings(name=str(tiny_model_dir), lora=LoraSettings(r=4)))
    rank8 = build_encoder(EncoderSettings(name=str(tiny_model_dir), lora=LoraSettings(r=8)))
    with pytest.raises(ValueError, match="shape"):
        load_adapter_state(rank8.model, adapter_state(rank4.model))


def test_adapter_with_other_targets_is_refused(tiny_model_dir):
    qv = LoraSettings(r=4, target_modules=["q_proj", "v_proj"])
    source = build_encoder(EncoderSettings(name=str(tiny_model_dir), lora=qv))
    target = build_encoder(EncoderSettings(name=str(tiny_model_dir), lora=LoraSettings(r=4)))
    with pytest.raises(ValueError, match="missing keys"):
        load_adapter_state(target.model, adapter_state(source.model))


def adapted(encoder) -> set[tuple[int, str]]:
    """(layer, projection) of every LoRA A matrix."""
    found = set()
    for name, _ in encoder.named_parameters():
        if "lora_A" in name:
            parts = name.split(".")
            layer = int(parts[parts.index("layers") + 1])
            found.add((layer, parts[parts.index("lora_A") - 1]))
    return found


def test_adapters_on_the_top_layers_only_and_the_mlp_too(deep_arch_dirs):
    lora = LoraSettings(r=4, target_modules=[*LLAMA_ATTENTION, *LLAMA_MLP], layers="top 2")
    encoder = build_encoder(EncoderSettings(name=str(deep_arch_dirs["llama"]), lora=lora))
    assert adapted(encoder) == {(i, m) for i in (4, 5) for m in [*LLAMA_ATTENTION, *LLAMA_MLP]}
    assert encoder.frozen_layers == 4


def test_adapters_on_every_layer_by_default(deep_arch_dirs):
    encoder = build_encoder(
        EncoderSettings(name=str(deep_arch_dirs["llama"]), lora=LoraSettings(r=4))
    )
    assert adapted(encoder) == {(i, m) for i in range(6) for m in LLAMA_ATTENTION}
    assert encoder.frozen_layers == 0


def test_lora_on_no_layers_is_a_config_error():
    with pytest.raises(ValueError, match="set `lora = null`"):
        LoraSettings(layers="none")


def test_adapter_from_other_layers_is_refused(deep_arch_dirs):
    name = str(deep_arch_dirs["llama"])
    top2 = build_encoder(EncoderSettings(name=name, lora=LoraSettings(r=4, layers="top 2")))
    top3 = build_encoder(EncoderSettings(name=name, lora=LoraSettings(r=4, layers="top 3")))
    with pytest.raises(ValueError, match="missing keys"):
        load_adapter_state(top3.model, adapter_state(top2.model))
