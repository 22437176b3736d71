"""Hugging Face datasets as input, built in-process: saved folders, data files, errors."""

from pathlib import Path

import datasets
import pytest
import spacy
from spacy.tokens import DocBin
from spacy.vocab import Vocab

from spacy_lsllama.corpora import (
    ConversionError,
    CorpusCounts,
    convert_file,
    load_hf_dataset,
    read_hf_dataset,
)

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
NER_FEATURES = datasets.Features(
    {
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=TAGS)),
    }
)
NER_ROWS = {
    "tokens": [["Ann", "Lee", "visits", "Rome"], ["Hi"], ["Bob", "left"]],
    "ner_tags": [[1, 2, 0, 3], [0], [1, 0]],
}
TEXT_FEATURES = datasets.Features(
    {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
)


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


@pytest.fixture(scope="module")
def saved_ner(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hf") / "ner"
    train = datasets.Dataset.from_dict(NER_ROWS, features=NER_FEATURES)
    dev = datasets.Dataset.from_dict(
        {"tokens": [["Rome"]], "ner_tags": [[3]]}, features=NER_FEATURES
    )
    datasets.DatasetDict({"train": train, "validation": dev}).save_to_disk(str(path))
    return path


def _ents(doc):
    return [(ent.text, ent.label_) for ent in doc.ents]


def test_saved_dataset_dict_tags_named_by_the_class_label(saved_ner, nlp):
    counts = CorpusCounts()
    docs = list(read_hf_dataset(saved_ner, nlp=nlp, split="train", counts=counts))
    assert [doc.text for doc in docs] == ["Ann Lee visits Rome", "Hi", "Bob left"]
    assert [_ents(doc) for doc in docs] == [
        [("Ann Lee", "PER"), ("Rome", "LOC")],
        [],
        [("Bob", "PER")],
    ]
    assert counts.scheme == "iob2"
    dev = list(read_hf_dataset(saved_ner, nlp=nlp, split="validation"))
    assert [_ents(doc) for doc in dev] == [[("Rome", "LOC")]]


def test_split_is_required_when_there_are_several_and_must_exist(saved_ner, nlp):
    with pytest.raises(ConversionError, match="give --split: the dataset has splits train, valid"):
        list(read_hf_dataset(saved_ner, nlp=nlp))
    with pytest.raises(ConversionError, match="no split 'test'"):
        list(read_hf_dataset(saved_ner, nlp=nlp, split="test"))


def test_saved_dataset_is_streamed_not_loaded(saved_ner):
    assert isinstance(load_hf_dataset(saved_ner, split="train"), datasets.IterableDataset)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_data_files_through_load_dataset(tmp_path, nlp, suffix):
    path = tmp_path / f"train{suffix}"
    if suffix == ".parquet":  # parquet keeps the ClassLabel names in its schema metadata
        datasets.Dataset.from_dict(NER_ROWS, features=NER_FEATURES).to_parquet(str(path))
    else:  # JSON keeps no ClassLabel names: tags as strings
        tags = [[TAGS[i] for i in row] for row in NER_ROWS["ner_tags"]]
        datasets.Dataset.from_dict({**NER_ROWS, "ner_tags": tags}).to_json(str(path))
    docs = list(read_hf_dataset(path, nlp=nlp, label_map={"LOC": ""}))
    assert [_ents(doc) for doc in docs] == [[("Ann Lee", "PER")], [], [("Bob", "PER")]]


def test_text_classification_with_class_label_and_label_map(tmp_path, nlp):
    path = tmp_path / "sst"
    rows = {"text": ["great film", "dull", "fine"], "label": [1, 0, 1]}
    datasets.Dataset.from_dict(rows, features=TEXT_FEATURES).save_to_disk(str(path))
    docs = list(read_hf_dataset(path, nlp=nlp))
    assert [doc.cats for doc in docs][:2] == [{"neg": 0.0, "pos": 1.0}, {"neg": 1.0, "pos": 0.0}]
    renamed = list(read_hf_dataset(path, nlp=nlp, label_map={"neg": "negative", "pos": "positive"}))
    assert renamed[0].cats == {"negative": 0.0, "positive": 1.0}


def test_bad_rows_name_source_row_and_field(tmp_path, nlp):
    path = tmp_path / "bad"
    rows = {"tokens": [["Ann"], ["Bob", "left"]], "ner_tags": [["B-PER"], ["B-PER"]]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(path))
    with pytest.raises(ConversionError) as info:
        list(read_hf_dataset(path, nlp=nlp))
    assert str(info.value) == f"{path}:2: ner_tags: 1 tags for 2 tokens"
    other = tmp_path / "other"
    datasets.Dataset.from_dict({"words": [["a"]]}).save_to_disk(str(other))
    with pytest.raises(ConversionError, match="expected 'tokens' and tags, or 'text' and 'label'"):
        list(read_hf_dataset(other, nlp=nlp))


def test_unreachable_hub_name_is_a_clear_error(nlp, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConversionError, match="could not be loaded from the Hugging Face Hub"):
        list(read_hf_dataset("someone/no-such-dataset", nlp=nlp))


def test_missing_data_file(tmp_path, nlp):
    with pytest.raises(ConversionError, match="no such file or dataset folder"):
        list(read_hf_dataset(tmp_path / "nope.parquet", nlp=nlp))


def test_convert_file_hf_format_writes_docbin(saved_ner, tmp_path):
    output = tmp_path / "train.spacy"
    counts = convert_file(saved_ner, output, format="hf", split="train")
    assert (counts.docs, counts.labels) == (3, {"LOC": 1, "PER": 2})
    docs = list(DocBin().from_disk(output).get_docs(Vocab()))
    assert [doc.text for doc in docs][0] == "Ann Lee visits Rome"
