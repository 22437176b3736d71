"""Reading and checking lines: raw fields kept, every decoding failure a LineError."""

import hashlib
import io

import pytest

from spacy_lsllama.tagging.lines import Line, LineError, LineReader, parse_line


def parse(raw: bytes):
    return parse_line(Line(1, raw, len(raw), False), "text", 100)


def test_fields_keep_their_exact_json_text():
    record = parse(b' { "n" : 1.50e+3 ,"t\\u0065xt":"caf\\u00e9", "x": [1,  2] } ')
    assert record.text == "café"
    assert [(f.key, f.raw_key, f.raw_value) for f in record.fields] == [
        ("n", '"n"', "1.50e+3"),
        ("text", '"t\\u0065xt"', '"caf\\u00e9"'),
        ("x", '"x"', "[1,  2]"),
    ]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"text": "a", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
        (b'{"text": "a", "x": NaN}', "NaN is not a JSON value"),
        (b'{"text": "a", "x": Infinity}', "Infinity is not a JSON value"),
        (b'{"text": "a", "text": "b"}', "field 'text' occurs 2 times"),
        (b'{"text": 12345678901234567890}', "field 'text' must be a string, got number"),
    ],
)
def test_decoding_failures_are_line_errors(raw, reason):
    with pytest.raises(LineError, match=reason):
        parse(raw)


def test_numbers_are_never_converted():
    record = parse(b'{"text": "a", "n": ' + b"7" * 5000 + b', "f": 1e400}')
    assert record.fields[1].raw_value == "7" * 5000 and record.fields[2].raw_value == "1e400"


def test_reader_marks_give_the_size_and_hash_of_the_bytes_up_to_a_line():
    data = b'\xef\xbb\xbf{"text": "a"}\r\nsecond\nthird'
    reader = LineReader(io.BytesIO(data), max_chars=100)
    lines = list(reader)
    assert [line.raw for line in lines] == [b'{"text": "a"}', b"second", b"third"]
    end = len(b'\xef\xbb\xbf{"text": "a"}\r\nsecond\n')
    assert reader.mark(2) == (end, hashlib.sha256(data[:end]).hexdigest())
    assert reader.mark(3) == (len(data), hashlib.sha256(data).hexdigest())
