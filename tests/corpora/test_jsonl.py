"""JSON Lines corpora: texts with spans, texts with labels."""

import pytest
from corpus_helpers import ents, error_of, write

from spacy_lsllama.corpora import read_jsonl_ner, read_jsonl_textcat


def test_jsonl_textcat(tmp_path, nlp):
    lines = '{"text": "Great rally", "label": "up"}\n\n{"text": "Sell-off", "label": "down"}\n'
    docs = list(read_jsonl_textcat(write(tmp_path, "a.jsonl", lines), nlp=nlp))
    assert [doc.cats for doc in docs] == [{"down": 0.0, "up": 1.0}, {"down": 1.0, "up": 0.0}]
    multi = write(tmp_path, "m.jsonl", '{"text": "x", "label": [1, 3]}\n')
    doc = next(read_jsonl_textcat(multi, nlp=nlp, labels=["1", "2", "3"]))
    assert doc.cats == {"1": 1.0, "2": 0.0, "3": 1.0}


@pytest.mark.parametrize(
    "line,message",
    [
        ('{"text": "x", "label": }', "2: invalid JSON: Expecting value (column 24)"),
        ('{"label": "up"}', "2: text: missing or not a string"),
        ('{"text": "x"}', "2: label: missing, or not a string, integer or list of them"),
        ('["x", "up"]', "2: expected a JSON object"),
        ('{"text": " ", "label": "up"}', "2: text: empty text"),
    ],
)
def test_jsonl_textcat_errors(tmp_path, nlp, line, message):
    path = write(tmp_path, "a.jsonl", '{"text": "ok", "label": "up"}\n' + line + "\n")
    assert str(error_of(read_jsonl_textcat, path, nlp=nlp)) == f"{path}:{message}"


def test_jsonl_ner(tmp_path, nlp):
    lines = (
        '{"text": "Ann works at Acme Corp today", "spans": '
        '[{"start": 0, "end": 3, "label": "PER"}, {"start": 13, "end": 22, "label": "ORG"}]}\n'
        '{"text": "Nothing here", "ents": []}\n'
    )
    docs = list(read_jsonl_ner(write(tmp_path, "a.jsonl", lines), nlp=nlp))
    assert ents(docs[0]) == [("Ann", "PER"), ("Acme Corp", "ORG")]
    assert docs[1].has_annotation("ENT_IOB") and not docs[1].ents


@pytest.mark.parametrize(
    "spans,message",
    [
        ('[{"start": 0, "end": 2, "label": "PER"}]', "spans[0]: 0-2 'An' does not fall on token"),
        ('[{"start": 0, "end": 99, "label": "PER"}]', "spans[0]: offsets 0-99 outside text"),
        ('[{"start": 0, "label": "PER"}]', "spans[0]: needs integer start/end and string label"),
        (
            '[{"start": 0, "end": 3, "label": "PER"}, {"start": 0, "end": 9, "label": "X"}]',
            "spans: overlapping spans",
        ),
    ],
)
def test_jsonl_ner_errors(tmp_path, nlp, spans, message):
    path = write(tmp_path, "a.jsonl", '{"text": "ok", "spans": []}\n')
    path.write_text(path.read_text() + '{"text": "Ann works", "spans": ' + spans + "}\n")
    assert str(error_of(read_jsonl_ner, path, nlp=nlp)).startswith(f"{path}:2: {message}")
