"""Output records keep every field they do not add, in meaning and as valid JSON."""

import json
from decimal import Decimal

import spacy
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_lsllama.tagging.lines import Line, parse_line
from spacy_lsllama.tagging.records import OutputPlan, RecordBuilder

NUMBERS = st.integers(min_value=-(10**40), max_value=10**40).map(str) | st.decimals(
    allow_nan=False, allow_infinity=False
).map(lambda d: f"{d:e}")
SCALARS = st.none() | st.booleans() | st.text(max_size=10)
KEYS = st.sampled_from(["a", "b", "ents", "cats", "é", "\\u00e9", "x y"])


def encode(value: object) -> str:
    """JSON text, with numbers given as raw strings kept as written (any digits, exponent)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(encode, value)) + "]"
    return json.dumps(value, ensure_ascii=False)


VALUES = st.recursive(
    SCALARS | NUMBERS.map(Decimal), lambda children: st.lists(children, max_size=3), max_leaves=6
)


@settings(max_examples=100, deadline=2000)
@given(fields=st.lists(st.tuples(KEYS, VALUES), max_size=5), text=st.text(max_size=20))
def test_fields_other_than_the_added_ones_keep_their_meaning(fields, text):
    nlp = spacy.blank("en")
    raw = ", ".join(f'"{key}": {encode(value)}' for key, value in fields)
    line = "{" + raw + (", " if raw else "") + f'"text": {json.dumps(text)}' + "}"
    record = parse_line(Line(1, line.encode(), 0, False), "text", 1000)
    out = RecordBuilder(OutputPlan(True, False, (), ())).build(1, nlp(text), record).line
    decoded = json.loads(out, parse_float=Decimal, parse_int=Decimal, object_pairs_hook=list)
    original = json.loads(line, parse_float=Decimal, parse_int=Decimal, object_pairs_hook=list)
    assert [pair for pair in decoded if pair[0] != "ents"] == [
        pair for pair in original if pair[0] != "ents"
    ]
    assert [pair[0] for pair in decoded].count("ents") == 1
