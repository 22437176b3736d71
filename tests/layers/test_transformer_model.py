"""The encoder layer's training side: a frozen encoder (`lora = null`) trains its heads only."""

import pytest
import spacy
import torch
from spacy.training import Example

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.testing import encoder_nlp


@pytest.mark.parametrize("settings", [{}, {"prefix_cache_mb": 0}, {"gradient_checkpointing": True}])
def test_without_lora_the_heads_learn_and_the_encoder_stays_frozen(tiny_model_dir, settings):
    spacy.util.fix_random_seed(0)
    nlp = encoder_nlp(tiny_model_dir, lora=None, **settings)
    encoder = get_encoder(nlp.get_pipe("llm").model)
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    ner = nlp.add_pipe("lsllama_ner", config={"model": {"tok2vec": {"upstream": "llm"}}})
    examples = [
        Example.from_dict(nlp.make_doc("Obama visited Paris"), {"entities": [(0, 5, "PER")]}),
        Example.from_dict(nlp.make_doc("Merkel met Obama"), {"entities": [(0, 6, "PER")]}),
    ]
    ner.initialize(lambda: examples, nlp=nlp)
    optimizer = spacy.util.registry.optimizers.get("Adam.v1")(0.01)
    losses = []
    for _ in range(15):
        step: dict[str, float] = {}
        nlp.update(examples, sgd=optimizer, losses=step)
        losses.append(step["lsllama_ner"])
    assert losses[-1] < losses[0] / 2
    assert not any(param.requires_grad for param in encoder.parameters())
    for name, value in encoder.state_dict().items():
        assert torch.equal(value, before[name]), name
