"""Layer blocks named in configs: all, none, top/bottom/middle K, A:B."""

import pytest

from spacy_lsllama.nn.layer_selection import LayerSelectionError, check_layers, select_layers


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("all", range(0, 30)),
        ("none", range(0)),
        ("top 10", range(20, 30)),
        ("bottom 10", range(0, 10)),
        ("middle 10", range(10, 20)),
        ("middle 9", range(10, 19)),
        ("20:", range(20, 30)),
        (":10", range(0, 10)),
        ("10:20", range(10, 20)),
        ("  Top   10 ", range(20, 30)),
    ],
)
def test_selection_names_a_contiguous_block(spec, expected):
    assert select_layers(spec, 30) == expected


@pytest.mark.parametrize("spec", ["top", "top -1", "3-5", "upper 10", "", "10:5:1", "a:b"])
def test_malformed_selection_is_refused_when_read(spec):
    with pytest.raises(LayerSelectionError, match="is not one of"):
        check_layers(spec)


@pytest.mark.parametrize("spec", ["top 31", "20:40", "10:10", "15:5"])
def test_block_outside_the_decoder_is_an_error_naming_its_depth(spec):
    with pytest.raises(LayerSelectionError, match="30"):
        select_layers(spec, 30)
