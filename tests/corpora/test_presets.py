"""Named benchmark sets: their splits, the stratified re-split, the documented counts."""

import pytest
import spacy
from corpus_helpers import top_cat, write
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from spacy_lsllama.corpora import DATASETS, convert_dataset, count_docs, stratified_split


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
        assert sorted(top_cat(doc) for doc in split) == sorted("ABCD" * (len(split) // 4))
    names = [[doc.text for doc in split] for split in splits.values()]
    assert sorted(sum(names, [])) == sorted(doc.text for doc in docs)
    assert names == [[doc.text for doc in s] for s in stratified_split(docs, seed=0).values()]
    assert names != [[doc.text for doc in s] for s in stratified_split(docs, seed=1).values()]


def test_convert_dataset_splits(tmp_path, nlp):
    folder = "twitter_financial_news_sentiment"
    write(tmp_path, f"{folder}/sent_train.csv", "text,label\nup,1\ndown,0\n")
    write(tmp_path, f"{folder}/sent_valid.csv", 'text,label\n"flat\nday",2\n')
    paths = convert_dataset("twitter_fin", tmp_path, tmp_path / "corpus")
    assert paths == {"train": tmp_path / "corpus/train.spacy", "dev": tmp_path / "corpus/dev.spacy"}
    dev = list(DocBin().from_disk(paths["dev"]).get_docs(nlp.vocab))
    assert [(doc.text, top_cat(doc)) for doc in dev] == [("flat\nday", "Neutral")]
    with pytest.raises(ValueError, match="unknown dataset 'imdb'"):
        convert_dataset("imdb", tmp_path, tmp_path / "corpus")


def test_convert_dataset_sst2_adds_glue_dev(tmp_path, nlp):
    for split in ("train", "dev", "test"):
        write(tmp_path, f"sst2/harvardnlp_stsa_binary/stsa.binary.{split}", "1 good\n0 bad\n")
    write(tmp_path, "sst2/dev.tsv", "sentence\tlabel\nit 's fine \t1\n")
    paths = convert_dataset("sst2", tmp_path, tmp_path / "corpus")
    assert sorted(paths) == ["dev", "glue_dev", "test", "train"]
    glue = count_docs(DocBin().from_disk(paths["glue_dev"]).get_docs(nlp.vocab))
    assert (glue.docs, glue.labels) == (1, {"positive": 1})


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
def test_real_datasets_match_documented_counts(name, shared_datasets):
    root = shared_datasets
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
