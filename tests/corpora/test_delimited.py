"""CSV and TSV text classification files, and AG News."""

import pytest
from corpus_helpers import error_of, top_cat, write

from spacy_lsllama.corpora import SST2_LABELS, ConversionError, read_ag_news, read_csv_textcat


def test_glue_tsv_keeps_quotes(tmp_path, nlp):
    path = write(tmp_path, "dev.tsv", 'sentence\tlabel\n" the ring " is good \t1\nbad \t0\n')
    label_map = {"0": "negative", "1": "positive"}
    kwargs = {"text_field": "sentence", "labels": SST2_LABELS, "label_map": label_map}
    docs = list(read_csv_textcat(path, nlp=nlp, delimiter="\t", **kwargs))
    assert [(doc.text, top_cat(doc)) for doc in docs] == [
        ('" the ring " is good ', "positive"),
        ("bad ", "negative"),
    ]
    bad = write(tmp_path, "bad.tsv", "sentence\tlabel\nok\t1\nmeh\t2\n")
    err = error_of(read_csv_textcat, bad, nlp=nlp, delimiter="\t", **kwargs)
    assert (err.line, err.field) == (3, "label")


TWITTER = (
    'text,label\r\n$BYND - JPMorgan reels,0\r\n"Line one\nline two, with comma",1\r\n'
    '"Three\nline\ntweet",2\r\nbad label,5\r\n'
)


def test_twitter_csv_newlines_in_quotes_and_start_line(tmp_path, nlp):
    path = write(tmp_path, "sent_train.csv", TWITTER)
    label_map = {"0": "Bearish", "1": "Bullish", "2": "Neutral"}
    err = error_of(read_csv_textcat, path, nlp=nlp, label_map=label_map)
    assert str(err) == f"{path}:8: label: unknown label '5' (expected one of 0, 1, 2)"
    good = write(tmp_path, "sent_valid.csv", TWITTER.rsplit("bad", 1)[0])
    docs = list(read_csv_textcat(good, nlp=nlp, label_map=label_map))
    assert [(doc.text, top_cat(doc)) for doc in docs] == [
        ("$BYND - JPMorgan reels", "Bearish"),
        ("Line one\nline two, with comma", "Bullish"),
        ("Three\nline\ntweet", "Neutral"),
    ]
    assert list(docs[0].cats) == ["Bearish", "Bullish", "Neutral"]


def test_csv_errors(tmp_path, nlp):
    path = write(tmp_path, "a.csv", 'text,label\nok,1\n"unterminated,1\n')
    assert error_of(read_csv_textcat, path, nlp=nlp).line == 3
    path = write(tmp_path, "b.csv", "body,label\nok,1\n")
    err = error_of(read_csv_textcat, path, nlp=nlp)
    assert (err.line, err.field) == (1, "text")
    path = write(tmp_path, "c.csv", "text,label\nok,1\n\nextra,1,1\n")
    assert str(error_of(read_csv_textcat, path, nlp=nlp)) == f"{path}:4: expected 2 fields, got 3"


def test_ag_news_reader(tmp_path, nlp):
    write(tmp_path, "classes.txt", "World\nSports\nBusiness\nSci/Tech\n")
    rows = (
        '"3","Wall St. Bears","Wall Street #39;s dwindling\\band, \\$1B &lt;TXN.N&gt;"\n'
        '"2","Title","A ""quoted"" word"\n'
        '"5","Bad","class"\n'
    )
    path = write(tmp_path, "test.csv", rows)
    docs = []
    with pytest.raises(ConversionError) as info:
        docs.extend(read_ag_news(path, nlp=nlp))
    assert (info.value.line, info.value.field) == (3, "class index")
    assert [doc.text for doc in docs] == [
        "Wall St. Bears Wall Street's dwindling band, $1B <TXN.N>",
        'Title A "quoted" word',
    ]
    assert [top_cat(doc) for doc in docs] == ["Business", "Sports"]
    assert list(docs[0].cats) == ["World", "Sports", "Business", "Sci/Tech"]
