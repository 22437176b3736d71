"""LoRA's input dropout: one mask per input tensor, the expected rate, cheap CPU masks."""

import pytest
import torch
from transformers import AutoModel, LlamaConfig

from spacy_lsllama.nn.dropout import SharedInputDropout, keep_mask
from spacy_lsllama.nn.lora import LoraSettings, apply_lora

P = 0.1


def test_masks_drop_at_the_rate_asked_in_every_lane():
    torch.manual_seed(0)
    mask = keep_mask(torch.Size((1000, 997)), P)
    assert mask.shape == (1000, 997) and mask.dtype == torch.bool
    assert (mask == 0).float().mean().item() == pytest.approx(P, abs=0.002)
    # every lane of the random words drops at the same rate (the top one has 15 bits)
    lanes = (mask.view(-1)[:996_000].view(-1, 4) == 0).float().mean(dim=0)
    assert lanes.tolist() == pytest.approx([P] * 4, abs=0.004)


def test_masks_follow_the_seed():
    torch.manual_seed(3)
    first = keep_mask(torch.Size((64, 64)), P)
    torch.manual_seed(3)
    assert torch.equal(first, keep_mask(torch.Size((64, 64)), P))
    assert not torch.equal(first, keep_mask(torch.Size((64, 64)), P))


def test_the_same_input_gets_the_same_mask_and_a_new_input_a_new_one():
    dropout = SharedInputDropout(0.5).train()
    x = torch.randn(32, 16, requires_grad=True)
    first, again = dropout(x), dropout(x)
    assert first is again
    other = dropout(x.detach().clone())
    assert not torch.equal(other == 0, first == 0)
    with torch.no_grad():
        x.add_(1.0)  # changed in place: its old mask no longer applies
    assert dropout(x) is not first


def test_gradients_flow_through_the_kept_elements_only():
    dropout = SharedInputDropout(0.5).train()
    x = torch.randn(64, 8, requires_grad=True)
    out = dropout(x)
    (out.sum() + dropout(x).sum()).backward()  # two readers of one input: gradients add up
    kept = out != 0
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 2 / 0.5))
    assert torch.all(x.grad[~kept] == 0)


def test_compiled_dropout_shares_a_mask_per_input_in_one_graph():
    """Under torch.compile the masks come from `keep_mask` as one opaque operator (inductor's
    own random numbers cost a compiled training step 0.4 s on 2 cores): the graph does not
    break, readers of one input share its mask as in eager mode, another input draws its
    own, and gradients reach the kept elements only."""
    dropout = SharedInputDropout(0.5).train()
    torch._dynamo.reset()
    three = torch.compile(lambda x, y: (dropout(x), dropout(x), dropout(y)), fullgraph=True)
    x = torch.randn(256, 64, requires_grad=True)
    first, second, other = three(x, x.detach().clone())
    assert torch.equal(first == 0, second == 0)
    assert not torch.equal(first == 0, other == 0)
    for out in (first, other):
        assert (out == 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert torch.allclose(first[first != 0], x[first != 0] / 0.5)
    (first.sum() + second.sum()).backward()
    kept = first != 0
    assert torch.all(x.grad[kept] == 4.0) and torch.all(x.grad[~kept] == 0)


def test_prediction_and_zero_rate_leave_the_input_alone():
    x = torch.randn(4, 4)
    assert SharedInputDropout(0.5).eval()(x) is x
    assert SharedInputDropout(0.0).train()(x) is x
    with pytest.raises(ValueError, match="dropout must lie in"):
        SharedInputDropout(1.0)


def _tiny_lora(shared: bool):
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
    )  # fmt: skip
    settings = LoraSettings(
        r=4,
        dropout=0.5,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"],
        shared_dropout=shared,
    )
    return apply_lora(AutoModel.from_config(config), settings)


def test_projections_reading_one_input_share_its_mask():
    model = _tiny_lora(shared=True).train()
    dropped: dict[str, torch.Tensor] = {}
    attention = model.get_base_model().layers[0].self_attn
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        layer = getattr(attention, name)
        layer.lora_A["default"].register_forward_hook(
            lambda module, args, out, name=name: dropped.__setitem__(name, args[0])
        )
    model(input_ids=torch.randint(0, 64, (2, 12)))
    assert dropped["q_proj"] is dropped["k_proj"] is dropped["v_proj"]
    assert dropped["o_proj"] is not dropped["q_proj"]
    assert (dropped["q_proj"] == 0).any()


def test_projections_share_the_mask_under_mixed_precision():
    # The encoder's case: float32 states, bfloat16 products. Nothing here holds the dropped
    # copy but the adapters' own products, as in the decoder layer.
    dropout = SharedInputDropout(0.5).train()
    adapters = [torch.nn.Linear(16, 4) for _ in range(3)]
    x = torch.randn(8, 16, requires_grad=True)
    patterns, dtypes, outputs = [], set(), []
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for adapter in adapters:
            dropped = dropout(x)
            patterns.append(dropped == 0)
            dtypes.add(dropped.dtype)
            outputs.append(adapter(dropped))
            del dropped
    assert torch.equal(patterns[0], patterns[1])
    assert torch.equal(patterns[0], patterns[2])
    assert patterns[0].any()
    assert dtypes == {torch.bfloat16}  # the copy the products read, made once


def test_peft_dropout_stays_available():
    model = _tiny_lora(shared=False)
    dropouts = {
        type(layer.lora_dropout["default"]).__name__
        for layer in model.modules()
        if hasattr(layer, "lora_dropout")
    }
    assert dropouts == {"Dropout"}
