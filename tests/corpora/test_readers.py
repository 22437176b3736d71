import pickle
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from spacy_lsllama.corpora import (
    DATASETS,
    SST2_LABELS,
    SST5_LABELS,
    ConversionError,
    convert_dataset,
    convert_file,
    count_docs,
    parse_sst_tree,
    read_ag_news,
    read_conll,
    read_csv_textcat,
    read_jsonl_ner,
    read_jsonl_textcat,
    read_sst_trees,
    read_stsa,
    spans_to_tags,
    stratified_split,
    tags_to_spans,
)

CONLL_IOB1 = """\
-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O

-DOCSTART- -X- -X- O

In IN B-PP O
Italy NNP B-NP I-LOC
Germany NNP I-NP B-LOC
Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
"""


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def _ents(doc: Doc) -> list[tuple[str, str]]:
    return [(ent.text, ent.label_) for ent in doc.ents]


def _cats(doc: Doc) -> str:
    return max(doc.cats, key=doc.cats.__getitem__)


def _error(call, *args, **kwargs) -> ConversionError:
    with pytest.raises(ConversionError) as info:
        list(call(*args, **kwargs))
    return info.value


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def test_read_conll_iob1(tmp_path):
    docs = list(read_conll(_write(tmp_path, "eng.train", CONLL_IOB1), vocab=Vocab()))
    assert [doc.text for doc in docs] == [
        "EU rejects German call",
        "In Italy Germany Peter Blackburn",
    ]
    assert _ents(docs[0]) == [("EU", "ORG"), ("German", "MISC")]
    assert _ents(docs[1]) == [("Italy", "LOC"), ("Germany", "LOC"), ("Peter Blackburn", "PER")]
    assert all(token.ent_iob_ in "BIO" for doc in docs for token in doc)


IOB1 = ["I-LOC", "B-LOC", "O", "I-PER", "I-PER", "I-ORG", "B-ORG", "I-ORG", "O"]
IOB2 = ["B-LOC", "B-LOC", "O", "B-PER", "I-PER", "B-ORG", "B-ORG", "I-ORG", "O"]
BILUO = ["U-LOC", "U-LOC", "O", "B-PER", "L-PER", "U-ORG", "B-ORG", "L-ORG", "O"]
IOBES = ["S-LOC", "S-LOC", "O", "B-PER", "E-PER", "S-ORG", "B-ORG", "E-ORG", "O"]
SPANS = [(0, 1, "LOC"), (1, 2, "LOC"), (3, 5, "PER"), (5, 6, "ORG"), (6, 8, "ORG")]


@pytest.mark.parametrize(
    "tags,scheme", [(IOB1, "iob1"), (IOB2, "iob2"), (BILUO, "biluo"), (IOBES, "iobes")]
)
def test_tags_spans_round_trip(tags, scheme):
    assert tags_to_spans(tags, scheme=scheme) == SPANS
    assert tags_to_spans(tags, scheme="auto") == SPANS
    assert spans_to_tags(SPANS, len(tags), scheme=scheme) == tags


def test_iob2_rejects_entity_starting_with_i(tmp_path):
    path = _write(tmp_path, "x.conll", "Hi O\nAnn I-PER\n")
    err = _error(read_conll, path, vocab=Vocab(), scheme="iob2")
    assert (err.path, err.line, err.field) == (str(path), 2, "tag")
    assert "'I-PER' starts an entity, which IOB2 forbids" in str(err)
    assert _ents(next(read_conll(path, vocab=Vocab(), scheme="auto"))) == [("Ann", "PER")]


def test_unknown_tag_names_file_line_and_field(tmp_path):
    path = _write(tmp_path, "eng.train", "EU NNP I-ORG\nrejects VBZ X-ORG\n")
    err = _error(read_conll, path, vocab=Vocab(), scheme="iob1")
    assert str(err) == f"{path}:2: tag: 'X-ORG' is not one of O, B-X, I-X (scheme iob1)"
    biluo = _write(tmp_path, "biluo.conll", "Ann U-PER\n")
    assert "'U-PER' is not one of" in str(_error(read_conll, biluo, vocab=Vocab(), scheme="iob2"))
    assert _ents(next(read_conll(biluo, vocab=Vocab()))) == [("Ann", "PER")]


def test_unknown_entity_label_is_rejected(tmp_path):
    path = _write(tmp_path, "emerging.test.conll", "Hi\tO\n\nApple\tB-corporation,B-person\n")
    err = _error(read_conll, path, vocab=Vocab(), labels=["corporation", "person"])
    assert err.line == 3
    assert "unknown entity label 'corporation,B-person'" in str(err)


def test_column_count_mismatch(tmp_path):
    path = _write(tmp_path, "eng.train", "EU NNP B-NP I-ORG\n\nrejects O\n")
    assert str(_error(read_conll, path, vocab=Vocab())) == f"{path}:3: expected 4 columns, got 2"


def test_docstart_inside_sentence_is_a_boundary_not_a_token(tmp_path):
    docstart = "-DOCSTART- -DOCSTART- O\n"
    text = f"{docstart}De Art O\nbal N O\n\nJan N B-PER\n{docstart}In Prep O\n"
    docs = list(read_conll(_write(tmp_path, "ned.train", text), vocab=Vocab(), scheme="iob2"))
    assert [[t.text for t in doc] for doc in docs] == [["De", "bal"], ["Jan"], ["In"]]
    assert _ents(docs[1]) == [("Jan", "PER")]


def test_wnut_lone_tab_line_ends_sentence(tmp_path):
    text = "Hi\tO\nLondon\tB-location\n\t\n@bob\tO\nNew\tB-location\nYork\tI-location\n"
    docs = list(read_conll(_write(tmp_path, "wnut.conll", text), vocab=Vocab(), scheme="iob2"))
    assert [doc.text for doc in docs] == ["Hi London", "@bob New York"]
    assert _ents(docs[1]) == [("New York", "location")]


def test_invalid_utf8_reports_line(tmp_path):
    path = _write(tmp_path, "bad.conll", b"a O\n\nb O\nc\xff O\n")
    err = _error(read_conll, path, vocab=Vocab())
    assert err.line == 4
    assert str(err).startswith(f"{path}:4: invalid UTF-8")


def test_missing_file_is_a_conversion_error(tmp_path):
    err = _error(read_conll, tmp_path / "nope.conll", vocab=Vocab())
    assert err.line is None
    assert str(err).startswith(f"{tmp_path / 'nope.conll'}: cannot read file")


def test_conversion_error_survives_pickling():
    err = ConversionError("eng.train", 1234, "expected 4 columns, got 2")
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == "eng.train:1234: expected 4 columns, got 2"
    assert (copy.path, copy.line, copy.field, copy.message) == (
        "eng.train",
        1234,
        None,
        "expected 4 columns, got 2",
    )


def test_sst_trees_leaves_and_root_label(tmp_path):
    trees = (
        "(3 (2 (2 Almodóvar) (2 -LRB-again-RRB-)) (4 (2 -LRB-) (3 8\xa01\\/2) (2 -RRB-)))\n"
        "(0 (1 Bad) (2 .))\n"
    )
    docs = list(read_sst_trees(_write(tmp_path, "train.txt", trees), vocab=Vocab()))
    assert [t.text for t in docs[0]] == ["Almodóvar", "-LRB-again-RRB-", "(", "8\xa01/2", ")"]
    assert docs[0].cats == dict.fromkeys(SST5_LABELS, 0.0) | {"positive": 1.0}
    assert docs[1].text == "Bad ."
    assert _cats(docs[1]) == "very negative"


@pytest.mark.parametrize(
    "tree,message",
    [
        ("(3 (2 a) (2 b)", "column 15: unexpected end of tree"),
        ("(7 (2 a))", "column 2: expected a label 0-4, got '7'"),
        ("(3 (2 a)) (2 b)", "column 11: text after the end of the tree"),
        ("(3 ())", "column 5: expected a label 0-4, got ')'"),
        ("(3 (2 a) b)", "column 10: expected ')', got 'b'"),
    ],
)
def test_sst_tree_errors_name_line_and_column(tmp_path, tree, message):
    path = _write(tmp_path, "dev.txt", f"(2 (2 ok))\n{tree}\n")
    assert str(_error(read_sst_trees, path, vocab=Vocab())) == f"{path}:2: {message}"


def test_parse_sst_tree():
    assert parse_sst_tree("(1 (2 (2 It) (1 drags)) (2 .))") == (1, ["It", "drags", "."])


def test_stsa(tmp_path):
    path = _write(tmp_path, "stsa.binary.dev", "1 a stirring , funny film\n0 wo n't sit\n")
    docs = list(read_stsa(path, vocab=Vocab()))
    assert [(doc.text, _cats(doc)) for doc in docs] == [
        ("a stirring , funny film", "positive"),
        ("wo n't sit", "negative"),
    ]
    assert docs[0].cats == {"negative": 0.0, "positive": 1.0}
    bad = _write(tmp_path, "stsa.bad", "1 fine\n2 not binary\n")
    assert _error(read_stsa, bad, vocab=Vocab()).line == 2


def test_glue_tsv_keeps_quotes(tmp_path, nlp):
    path = _write(tmp_path, "dev.tsv", 'sentence\tlabel\n" the ring " is good \t1\nbad \t0\n')
    label_map = {"0": "negative", "1": "positive"}
    kwargs = {"text_field": "sentence", "labels": SST2_LABELS, "label_map": label_map}
    docs = list(read_csv_textcat(path, nlp=nlp, delimiter="\t", **kwargs))
    assert [(doc.text, _cats(doc)) for doc in docs] == [
        ('" the ring " is good ', "positive"),
        ("bad ", "negative"),
    ]
    bad = _write(tmp_path, "bad.tsv", "sentence\tlabel\nok\t1\nmeh\t2\n")
    err = _error(read_csv_textcat, bad, nlp=nlp, delimiter="\t", **kwargs)
    assert (err.line, err.field) == (3, "label")


TWITTER = (
    'text,label\r\n$BYND - JPMorgan reels,0\r\n"Line one\nline two, with comma",1\r\n'
    '"Three\nline\ntweet",2\r\nbad label,5\r\n'
)


def test_twitter_csv_newlines_in_quotes_and_start_line(tmp_path, nlp):
    path = _write(tmp_path, "sent_train.csv", TWITTER)
    label_map = {"0": "Bearish", "1": "Bullish", "2": "Neutral"}
    err = _error(read_csv_textcat, path, nlp=nlp, label_map=label_map)
    assert str(err) == f"{path}:8: label: unknown label '5' (expected one of 0, 1, 2)"
    good = _write(tmp_path, "sent_valid.csv", TWITTER.rsplit("bad", 1)[0])
    docs = list(read_csv_textcat(good, nlp=nlp, label_map=label_map))
    assert [(doc.text, _cats(doc)) for doc in docs] == [
        ("$BYND - JPMorgan reels", "Bearish"),
        ("Line one\nline two, with comma", "Bullish"),
        ("Three\nline\ntweet", "Neutral"),
    ]
    assert list(docs[0].cats) == ["Bearish", "Bullish", "Neutral"]


def test_csv_errors(tmp_path, nlp):
    path = _write(tmp_path, "a.csv", 'text,label\nok,1\n"unterminated,1\n')
    assert _error(read_csv_textcat, path, nlp=nlp).line == 3
    path = _write(tmp_path, "b.csv", "body,label\nok,1\n")
    err = _error(read_csv_textcat, path, nlp=nlp)
    assert (err.line, err.field) == (1, "text")
    path = _write(tmp_path, "c.csv", "text,label\nok,1\n\nextra,1,1\n")
    assert str(_error(read_csv_textcat, path, nlp=nlp)) == f"{path}:4: expected 2 fields, got 3"


def test_ag_news_reader(tmp_path, nlp):
    _write(tmp_path, "classes.txt", "World\nSports\nBusiness\nSci/Tech\n")
    rows = (
        '"3","Wall St. Bears","Wall Street #39;s dwindling\\band, \\$1B &lt;TXN.N&gt;"\n'
        '"2","Title","A ""quoted"" word"\n'
        '"5","Bad","class"\n'
    )
    path = _write(tmp_path, "test.csv", rows)
    docs = []
    with pytest.raises(ConversionError) as info:
        docs.extend(read_ag_news(path, nlp=nlp))
    assert (info.value.line, info.value.field) == (3, "class index")
    assert [doc.text for doc in docs] == [
        "Wall St. Bears Wall Street's dwindling band, $1B <TXN.N>",
        'Title A "quoted" word',
    ]
    assert [_cats(doc) for doc in docs] == ["Business", "Sports"]
    assert list(docs[0].cats) == ["World", "Sports", "Business", "Sci/Tech"]


def _labelled_docs(vocab: Vocab, per_label: int) -> list[Doc]:
    docs = []
    for i in range(per_label * 4):
        doc = Doc(vocab, words=[f"doc{i}"])
        doc.cats = {label: float(label == "ABCD"[i % 4]) for label in "ABCD"}
        docs.append(doc)
    return docs


def test_stratified_split_is_seeded_and_stratified():
    docs = _labelled_docs(Vocab(), per_label=20)
    splits = stratified_split(docs, seed=0)
    assert {name: len(split) for name, split in splits.items()} == {
        "train": 64,
        "dev": 8,
        "test": 8,
    }
    for split in splits.values():
        assert sorted(_cats(doc) for doc in split) == sorted("ABCD" * (len(split) // 4))
    names = [[doc.text for doc in split] for split in splits.values()]
    assert sorted(sum(names, [])) == sorted(doc.text for doc in docs)
    assert names == [[doc.text for doc in s] for s in stratified_split(docs, seed=0).values()]
    assert names != [[doc.text for doc in s] for s in stratified_split(docs, seed=1).values()]


def test_jsonl_textcat(tmp_path, nlp):
    lines = '{"text": "Great rally", "label": "up"}\n\n{"text": "Sell-off", "label": "down"}\n'
    docs = list(read_jsonl_textcat(_write(tmp_path, "a.jsonl", lines), nlp=nlp))
    assert [doc.cats for doc in docs] == [{"down": 0.0, "up": 1.0}, {"down": 1.0, "up": 0.0}]
    multi = _write(tmp_path, "m.jsonl", '{"text": "x", "label": [1, 3]}\n')
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
    path = _write(tmp_path, "a.jsonl", '{"text": "ok", "label": "up"}\n' + line + "\n")
    assert str(_error(read_jsonl_textcat, path, nlp=nlp)) == f"{path}:{message}"


def test_jsonl_ner(tmp_path, nlp):
    lines = (
        '{"text": "Ann works at Acme Corp today", "spans": '
        '[{"start": 0, "end": 3, "label": "PER"}, {"start": 13, "end": 22, "label": "ORG"}]}\n'
        '{"text": "Nothing here", "ents": []}\n'
    )
    docs = list(read_jsonl_ner(_write(tmp_path, "a.jsonl", lines), nlp=nlp))
    assert _ents(docs[0]) == [("Ann", "PER"), ("Acme Corp", "ORG")]
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
    path = _write(tmp_path, "a.jsonl", '{"text": "ok", "spans": []}\n')
    path.write_text(path.read_text() + '{"text": "Ann works", "spans": ' + spans + "}\n")
    assert str(_error(read_jsonl_ner, path, nlp=nlp)).startswith(f"{path}:2: {message}")


def test_convert_file_writes_docbin_and_counts(tmp_path, nlp):
    source = _write(tmp_path, "eng.train", CONLL_IOB1)
    output = tmp_path / "out" / "train.spacy"
    counts = convert_file(source, output, format="conll", scheme="iob1")
    assert (counts.docs, counts.tokens) == (2, 9)
    assert counts.labels == {"LOC": 2, "MISC": 1, "ORG": 1, "PER": 1}
    docs = list(DocBin().from_disk(output).get_docs(nlp.vocab))
    assert [_ents(doc) for doc in docs] == [
        [("EU", "ORG"), ("German", "MISC")],
        [("Italy", "LOC"), ("Germany", "LOC"), ("Peter Blackburn", "PER")],
    ]


def test_convert_file_writes_nothing_on_error(tmp_path):
    source = _write(tmp_path, "bad.tsv", "sentence\tlabel\nfine\t1\n")
    output = tmp_path / "bad.spacy"
    with pytest.raises(ConversionError):
        convert_file(source, output, format="tsv-textcat")
    assert not output.exists()
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        convert_file(source, output, format="xml")


def test_convert_dataset_splits(tmp_path, nlp):
    folder = "twitter_financial_news_sentiment"
    _write(tmp_path, f"{folder}/sent_train.csv", "text,label\nup,1\ndown,0\n")
    _write(tmp_path, f"{folder}/sent_valid.csv", 'text,label\n"flat\nday",2\n')
    paths = convert_dataset("twitter_fin", tmp_path, tmp_path / "corpus")
    assert paths == {"train": tmp_path / "corpus/train.spacy", "dev": tmp_path / "corpus/dev.spacy"}
    dev = list(DocBin().from_disk(paths["dev"]).get_docs(nlp.vocab))
    assert [(doc.text, _cats(doc)) for doc in dev] == [("flat\nday", "Neutral")]
    with pytest.raises(ValueError, match="unknown dataset 'imdb'"):
        convert_dataset("imdb", tmp_path, tmp_path / "corpus")


def test_convert_dataset_sst2_adds_glue_dev(tmp_path, nlp):
    for split in ("train", "dev", "test"):
        _write(tmp_path, f"sst2/harvardnlp_stsa_binary/stsa.binary.{split}", "1 good\n0 bad\n")
    _write(tmp_path, "sst2/dev.tsv", "sentence\tlabel\nit 's fine \t1\n")
    paths = convert_dataset("sst2", tmp_path, tmp_path / "corpus")
    assert sorted(paths) == ["dev", "glue_dev", "test", "train"]
    glue = count_docs(DocBin().from_disk(paths["glue_dev"]).get_docs(nlp.vocab))
    assert (glue.docs, glue.labels) == (1, {"positive": 1})


def _datasets_root() -> Path | None:
    for root in (Path("/work/shared/datasets"), Path(__file__).parents[2] / "shared/datasets"):
        if root.is_dir():
            return root
    return None


# Documented counts (SOURCE.md): docs per split and entities per type or docs per label.
EXPECTED = {
    "conll2003": {
        "train": (14041, {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600}),
        "dev": (3250, {"LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842}),
        "test": (3453, {"LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617}),
    },
    "wnut17": {
        "train": (3394, {"person": 660, "location": 548, "group": 264, "corporation": 221}),
        "dev": (1009, {"person": 470, "location": 74, "product": 114, "creative-work": 105}),
        "test": (1287, {"person": 429, "group": 165, "product": 127, "creative-work": 142}),
    },
    "conll2002_es": {
        "train": (8323, {"LOC": 4914, "MISC": 2173, "ORG": 7390, "PER": 4321}),
        "dev": (1915, {"LOC": 985, "MISC": 445, "ORG": 1700, "PER": 1222}),
        "test": (1517, {"LOC": 1084, "MISC": 340, "ORG": 1400, "PER": 735}),
    },
    "conll2002_nl": {
        "train": (15806, {"LOC": 3208, "MISC": 3338, "ORG": 2082, "PER": 4716}),
        "dev": (2895, {"LOC": 479, "MISC": 748, "ORG": 686, "PER": 703}),
        "test": (5195, {"LOC": 774, "MISC": 1187, "ORG": 882, "PER": 1098}),
    },
    "sst2": {
        "train": (6920, {"negative": 3310, "positive": 3610}),
        "dev": (872, {"negative": 428, "positive": 444}),
        "test": (1821, {"negative": 912, "positive": 909}),
        "glue_dev": (872, {"negative": 428, "positive": 444}),
    },
    "sst5": {
        "train": (8544, {"very negative": 1092, "negative": 2218, "very positive": 1288}),
        "dev": (1101, {"very negative": 139, "neutral": 229, "positive": 279}),
        "test": (2210, {"negative": 633, "neutral": 389, "very positive": 399}),
    },
    "ag_news": {
        "train": (6080, {"World": 1520, "Sports": 1520, "Business": 1520, "Sci/Tech": 1520}),
        "dev": (760, {"World": 190, "Sports": 190, "Business": 190, "Sci/Tech": 190}),
        "test": (760, {"World": 190, "Sports": 190, "Business": 190, "Sci/Tech": 190}),
    },
    "twitter_fin": {
        "train": (9543, {"Bearish": 1442, "Bullish": 1923, "Neutral": 6178}),
        "dev": (2388, {"Bearish": 347, "Bullish": 475, "Neutral": 1566}),
    },
}
EXPECTED["conll2003_iob2"] = EXPECTED["conll2003"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DATASETS))
def test_real_datasets_match_documented_counts(name):
    root = _datasets_root()
    if root is None:
        pytest.skip("shared datasets not available")
    spec = DATASETS[name]
    nlp = spacy.blank(spec.lang)
    splits = {split: list(spec.read(root / file, nlp)) for split, file in spec.files.items()}
    if spec.resplit is not None:
        splits = spec.resplit([doc for docs in splits.values() for doc in docs])
    assert set(splits) == set(EXPECTED[name])
    for split, (n_docs, labels) in EXPECTED[name].items():
        counts = count_docs(splits[split])
        assert counts.docs == n_docs, split
        assert {label: counts.labels[label] for label in labels} == labels, split


def _canonical_iob1(tags: list[str]) -> list[str]:
    """IOB1 writes B-X only after an X entity; eng.train breaks this twice (B-MISC after O)."""
    previous = ["O", *tags]
    return [
        "I-" + tag[2:] if tag.startswith("B-") and before[2:] != tag[2:] else tag
        for before, tag in zip(previous, tags, strict=False)
    ]


@pytest.mark.slow
def test_real_conll2003_tags_round_trip():
    root = _datasets_root()
    if root is None:
        pytest.skip("shared datasets not available")
    for file, scheme in [("eng.train", "iob1"), ("iob2_NguyenHoangAn0511/eng.train", "iob2")]:
        sentences: list[list[str]] = [[]]
        for line in (root / "conll2003" / file).read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("-DOCSTART-"):
                sentences.append([])
            else:
                sentences[-1].append(line.split()[-1])
        for tags in filter(None, sentences):
            expected = _canonical_iob1(tags) if scheme == "iob1" else tags
            assert (
                spans_to_tags(tags_to_spans(tags, scheme=scheme), len(tags), scheme=scheme)
                == expected
            )
