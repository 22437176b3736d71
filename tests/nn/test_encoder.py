"""The encoder module: LoRA merged for prediction, unmerged for training and saving."""

import numpy
import pytest
import spacy
import torch
from spacy.training import Example

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.testing import base_weights, trained_adapter_nlp

TEXTS = ["Barack Obama visited Paris.", "Apple opened offices in London and Berlin last year."]


def states(nlp):
    return [doc._.trf_data.model_output.last_hidden_state for doc in nlp.pipe(TEXTS)]


def test_merged_prediction_equals_unmerged(tiny_model_dir):
    merged = trained_adapter_nlp(tiny_model_dir)
    unmerged = trained_adapter_nlp(tiny_model_dir, merge_lora=False)
    for a, b in zip(states(merged), states(unmerged)):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert get_encoder(merged.get_pipe("llm").model).lora_merged
    assert not get_encoder(unmerged.get_pipe("llm").model).lora_merged


def test_training_after_prediction_sees_the_original_base_weights(tiny_model_dir):
    nlp = trained_adapter_nlp(tiny_model_dir)
    before = base_weights(nlp)
    states(nlp)
    assert any(not torch.equal(before[k], v) for k, v in base_weights(nlp).items())
    nlp.add_pipe("lsllama_ner", config={"model": {"tok2vec": {"upstream": "llm"}}})
    nlp.get_pipe("lsllama_ner").add_label("LOC")
    example = Example.from_dict(nlp.make_doc("Paris"), {"entities": [(0, 5, "LOC")]})
    nlp.get_pipe("lsllama_ner").initialize(lambda: [example], nlp=nlp)
    nlp.update([example], sgd=spacy.util.registry.optimizers.get("Adam.v1")(0.001))
    assert not get_encoder(nlp.get_pipe("llm").model).lora_merged
    for key, value in base_weights(nlp).items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=1e-6)


@pytest.mark.parametrize("embed_base_model", [True, False])
def test_saving_after_prediction_reloads_the_same_outputs(
    tiny_model_dir, tmp_path, embed_base_model
):
    nlp = trained_adapter_nlp(tiny_model_dir, embed_base_model=embed_base_model)
    expected = states(nlp)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    for a, b in zip(expected, states(loaded)):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_half_precision_merge_predicts_as_unmerged_and_puts_the_base_back_exactly(
    tiny_model_dir,
):
    merged = trained_adapter_nlp(tiny_model_dir, dtype="bfloat16")
    unmerged = trained_adapter_nlp(tiny_model_dir, dtype="bfloat16", merge_lora=False)
    before = base_weights(merged)
    assert {v.dtype for v in before.values()} == {torch.bfloat16}
    for a, b in zip(states(merged), states(unmerged)):
        numpy.testing.assert_allclose(a, b, atol=0.05 * numpy.abs(b).max())
    encoder = get_encoder(merged.get_pipe("llm").model)
    assert encoder.lora_merged
    assert any(not torch.equal(before[k], v) for k, v in base_weights(merged).items())
    encoder.set_lora_merged(False)  # as training and saving do
    for key, value in base_weights(merged).items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("bidirectional", [True, False])
def test_packed_training_gives_each_window_its_own_gradients(tiny_model_dir, bidirectional):
    """Windows sharing a packed row train the adapter exactly as each window alone would."""
    encoder = get_encoder(
        trained_adapter_nlp(tiny_model_dir, bidirectional=bidirectional).get_pipe("llm").model
    )
    encoder.model.eval()  # no LoRA dropout: both ways must see the same function
    lengths = [10, 3, 4, 2]  # the last three share a row
    width, hidden = max(lengths), encoder.hidden_size
    torch.manual_seed(1)
    ids = torch.randint(3, encoder.model.config.vocab_size, (len(lengths), width))
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()
    weights = torch.randn(len(lengths), width, hidden)
    params = [p for name, p in encoder.named_parameters() if "lora_" in name]

    def gradients(windows: list[int], n: int) -> list[torch.Tensor]:
        gather = torch.arange(len(windows) * n).reshape(len(windows), n)
        out = encoder(ids[windows, :n], mask[windows, :n], gather, mask[windows, :n].float())
        return torch.autograd.grad((out * weights[windows, :n]).sum(), params)

    together = gradients(list(range(len(lengths))), width)
    alone = [gradients([i], n) for i, n in enumerate(lengths)]
    for packed, *single in zip(together, *alone):
        expected = sum(single)
        assert float((packed - expected).norm() / expected.norm()) < 1e-5


def test_rows_per_forward_below_one_is_a_config_error():
    from spacy_lsllama.nn.encoder import EncoderSettings

    with pytest.raises(ValueError, match="rows_per_forward must be at least 1, got 0"):
        EncoderSettings(name="model", rows_per_forward=0)
