"""Window packing: short windows share rows, and every window still sees only itself."""

import numpy
import pytest
import torch

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.nn.packing import pack_windows
from spacy_lsllama.nn.unmasking import segment_mask_4d
from spacy_lsllama.testing import encoder_nlp


def test_windows_pack_into_fewer_rows_and_map_back_exactly():
    lengths = torch.tensor([2, 6, 3, 1, 4])
    ids = torch.arange(1, 5 * 6 + 1).reshape(5, 6)
    packed = pack_windows(ids, lengths)
    assert packed.input_ids.shape == (3, 6)
    assert packed.fill.tolist() == [6, 6, 4]
    flat = packed.input_ids.reshape(-1)
    for window, n in enumerate(lengths.tolist()):
        positions = window * 6 + torch.arange(n)
        assert flat[packed.source[positions]].tolist() == ids[window, :n].tolist()
        in_row = packed.segments == window
        assert int(in_row.sum()) == n
        assert packed.position_ids[in_row].tolist() == list(range(n))
    assert int((packed.segments == -1).sum()) == 3 * 6 - int(lengths.sum())


def test_chunks_run_fullest_rows_first_and_cover_every_row():
    packed = pack_windows(torch.ones((5, 6), dtype=torch.long), torch.tensor([2, 6, 3, 1, 4]))
    chunks = packed.chunks(2)
    assert [(rows.tolist(), width) for rows, width in chunks] == [([0, 1], 6), ([2], 4)]


@pytest.mark.parametrize("causal", [True, False])
def test_segment_mask_blocks_other_windows_and_padding(causal):
    segments = torch.tensor([[0, 0, 1, 1, -1]])
    positions = torch.tensor([[0, 1, 0, 1, 0]])
    allowed = segment_mask_4d(segments, positions, torch.float32, causal=causal)[0, 0] == 0
    expected = [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1]]
    if causal:
        expected[0][1] = expected[2][3] = 0
    assert allowed.int().tolist() == expected


def test_causal_segment_mask_applies_the_sliding_window():
    segments = torch.zeros((1, 4), dtype=torch.long)
    positions = torch.arange(4)[None]
    mask = segment_mask_4d(segments, positions, torch.float32, causal=True, sliding_window=2)
    assert (mask[0, 0] == 0).int().tolist() == [
        [1, 0, 0, 0],
        [1, 1, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 1, 1],
    ]


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_packed_docs_get_the_states_of_each_doc_alone(tiny_arch_dirs, arch, bidirectional):
    nlp = encoder_nlp(tiny_arch_dirs[arch], bidirectional=bidirectional, rows_per_forward=1)
    texts = [
        "Apple opened offices in London, New York and Tokyo on Tuesday morning, and the "
        "company said that Berlin, Madrid and Rome would follow by the end of next year.",
        "Paris",
        "Obama visited Berlin.",
        "Rain in Spain.",
    ]
    rows: list[int] = []
    embed = get_encoder(nlp.get_pipe("llm").model).decoder.embed_tokens  # once per chunk
    hook = embed.register_forward_pre_hook(lambda module, args: rows.append(len(args[0])))
    together = [doc._.trf_data.model_output.last_hidden_state[0] for doc in nlp.pipe(texts)]
    hook.remove()
    assert rows == [1, 1]  # four docs in two rows: the three short ones share the second
    alone = [next(nlp.pipe([t]))._.trf_data.model_output.last_hidden_state[0] for t in texts]
    lengths = [len(states) for states in alone]
    assert sum(lengths[1:]) <= lengths[0]
    for packed, single in zip(together, alone):
        numpy.testing.assert_allclose(packed[: len(single)], single, atol=1e-5)
