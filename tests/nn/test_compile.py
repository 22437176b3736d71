"""Compiled layers: the same states and gradients as eager, one compilation for all layers,
fresh after training, never saved or copied."""

import copy

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from torch._inductor.utils import run_and_get_code

from spacy_lsllama.nn.compile import decoder_layers
from spacy_lsllama.pipeline.compilation import compile_pipeline
from spacy_lsllama.testing import encoder_nlp, encoder_of, trained_adapter_nlp

TEXTS = [
    "Barack Obama visited Paris.",
    "Apple opened offices in London and Berlin last year.",
    "Rain.",
]


def fresh_dynamo():
    """Forget compiled code and zero dynamo's counters: `reset()` keeps the counters, so a
    count read after it alone would include earlier tests' compilations."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()


def compiled_frames() -> int:
    return torch._dynamo.utils.counters["frames"]["ok"]


def states(nlp, texts=TEXTS):
    return [doc._.trf_data.model_output.last_hidden_state for doc in nlp.pipe(texts)]


def assert_states_close(a, b):
    for x, y in zip(a, b, strict=True):
        numpy.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_compiled_prediction_equals_eager(tiny_arch_dirs, arch, bidirectional):
    nlp = trained_adapter_nlp(tiny_arch_dirs[arch], bidirectional=bidirectional, compile=True)
    fresh_dynamo()
    compiled = states(nlp)
    assert compiled_frames() > 0
    encoder_of(nlp).use_compiled(False)
    fresh_dynamo()
    assert_states_close(compiled, states(nlp))
    assert compiled_frames() == 0  # eager really is eager


def test_one_compiled_graph_serves_every_layer_and_is_taken_off_after(tiny_model_dir):
    nlp = trained_adapter_nlp(tiny_model_dir, compile=True)
    layers = decoder_layers(encoder_of(nlp).model)
    assert len(layers) > 1
    fresh_dynamo()
    with torch._dynamo.config.patch(error_on_recompile=True):
        _, codes = run_and_get_code(states, nlp)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert all(layer._compiled_call_impl is None for layer in layers)
    assert len(codes) == 1 and "inductor_entry_impl" in codes[0]  # called from C++ on CPU


def lora_gradients(encoder, compiled: bool) -> list[torch.Tensor]:
    """The adapters' gradients for a fixed loss over two windows of random pieces."""
    encoder.use_compiled(compiled)
    data = torch.Generator().manual_seed(1)  # the same pieces every call, fresh dropout masks
    lengths = [7, 4]
    vocab = encoder.model.config.vocab_size
    ids = torch.randint(3, vocab, (len(lengths), max(lengths)), generator=data)
    mask = (torch.arange(ids.shape[1])[None] < torch.tensor(lengths)[:, None]).long()
    gather = torch.arange(ids.numel()).reshape(ids.shape)
    weights = torch.randn(*ids.shape, encoder.hidden_size, generator=data)
    params = [p for name, p in encoder.named_parameters() if "lora_" in name]
    out = encoder(ids, mask, gather, mask.float())
    return list(torch.autograd.grad((out * weights).sum(), params))


def relative_gradient_gap(encoder) -> float:
    """The largest relative difference between the adapters' gradients computed eagerly and
    compiled (freshly, so the training pass really runs compiled), each from the same seed."""
    torch.manual_seed(7)
    eager = lora_gradients(encoder, compiled=False)
    fresh_dynamo()
    torch.manual_seed(7)
    compiled = lora_gradients(encoder, compiled=True)
    assert compiled_frames() > 0
    return max(
        float((got - expected).norm() / expected.norm())
        for got, expected in zip(compiled, eager, strict=True)
    )


@pytest.mark.parametrize("bidirectional", [True, False])
def test_compiled_training_computes_the_eager_gradients(tiny_model_dir, bidirectional):
    encoder = encoder_of(trained_adapter_nlp(tiny_model_dir, bidirectional=bidirectional))
    encoder.model.eval()  # no LoRA dropout: both ways must compute the same function
    assert relative_gradient_gap(encoder) < 1e-4


def test_compiled_training_draws_the_eager_dropout_masks(tiny_model_dir):
    """With one seed, compiled training drops the same elements as eager training: the masks
    are drawn in the same order, so `compile` leaves a seed's dropout as it was."""
    encoder = encoder_of(trained_adapter_nlp(tiny_model_dir, lora={"dropout": 0.5, "r": 4}))
    encoder.model.train()
    assert relative_gradient_gap(encoder) < 1e-3


def test_compiled_training_drops_the_adapters_inputs(tiny_model_dir):
    encoder = encoder_of(
        trained_adapter_nlp(tiny_model_dir, compile=True, lora={"dropout": 0.5, "r": 4})
    )
    encoder.model.train()
    with_dropout = lora_gradients(encoder, compiled=True)
    again = lora_gradients(encoder, compiled=True)
    encoder.model.eval()
    without = lora_gradients(encoder, compiled=True)
    assert all(torch.isfinite(g).all() for g in with_dropout)
    assert any(not torch.allclose(a, b) for a, b in zip(with_dropout, without, strict=True))
    assert any(not torch.allclose(a, b) for a, b in zip(with_dropout, again, strict=True))


def test_training_with_checkpointed_gradients_runs_eagerly(tiny_model_dir):
    nlp = trained_adapter_nlp(tiny_model_dir, compile=True, gradient_checkpointing=True)
    fresh_dynamo()
    example = Example.from_dict(nlp.make_doc("Paris"), {})
    nlp.update([example], sgd=spacy.util.registry.optimizers.get("Adam.v1")(0.01))
    assert compiled_frames() == 0


def test_one_row_and_one_piece_chunks_do_not_recompile(tiny_model_dir):
    nlp = trained_adapter_nlp(tiny_model_dir, compile=True)
    states(nlp)
    small = [["Paris"], ["Barack Obama"], ["Rain.", "Paris"]]
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled = [states(nlp, texts) for texts in small]
    encoder_of(nlp).use_compiled(False)
    for texts, got in zip(small, compiled, strict=True):
        assert_states_close(got, states(nlp, texts))


def test_compiled_prediction_sees_training_updates(tiny_model_dir):
    nlp = trained_adapter_nlp(tiny_model_dir, compile=True)
    before = states(nlp)
    nlp.add_pipe("lsllama_ner", config={"model": {"tok2vec": {"upstream": "llm"}}})
    nlp.get_pipe("lsllama_ner").add_label("LOC")
    example = Example.from_dict(nlp.make_doc("Paris"), {"entities": [(0, 5, "LOC")]})
    nlp.get_pipe("lsllama_ner").initialize(lambda: [example], nlp=nlp)
    optimizer = spacy.util.registry.optimizers.get("Adam.v1")(0.05)
    for _ in range(3):
        nlp.update([example], sgd=optimizer)
    after = states(nlp)
    assert any(not numpy.allclose(x, y, atol=1e-3) for x, y in zip(before, after))
    encoder_of(nlp).use_compiled(False)
    assert_states_close(after, states(nlp))


def test_compiled_state_is_not_saved_or_copied(tiny_model_dir, tmp_path):
    nlp = trained_adapter_nlp(tiny_model_dir, compile=True)
    expected = states(nlp)
    encoder = encoder_of(nlp)
    never_compiled = encoder_of(trained_adapter_nlp(tiny_model_dir))
    assert encoder.state_dict().keys() == never_compiled.state_dict().keys()
    duplicate = copy.deepcopy(encoder)
    assert all(layer._compiled_call_impl is None for layer in decoder_layers(duplicate.model))
    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")
    assert reloaded.config["components"]["llm"]["model"]["compile"] is True
    assert_states_close(expected, states(reloaded))


def test_compile_pipeline_switches_every_encoder(tiny_model_dir):
    nlp = encoder_nlp(tiny_model_dir)
    assert not encoder_of(nlp).settings.compile
    assert compile_pipeline(nlp) == 1
    assert encoder_of(nlp).settings.compile
    fresh_dynamo()
    states(nlp)
    assert compiled_frames() > 0


def test_compile_pipeline_without_an_encoder_says_so():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    with pytest.raises(ValueError, match="no lsllama_transformer layer.*sentencizer"):
        compile_pipeline(nlp)


def test_a_decoder_without_layers_cannot_be_compiled():
    with pytest.raises(ValueError, match="Linear has no `layers`.*compile = false"):
        decoder_layers(torch.nn.Linear(2, 2))
