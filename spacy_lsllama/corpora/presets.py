"""Named benchmark sets: which files of each make which split, and how they are read.

`lsllama convert NAME OUT --data-dir DATA` converts one of `DATASETS`; the readers themselves
live in the modules of their input family.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .conll import read_conll
from .delimited import read_ag_news, read_csv_textcat
from .docbin import write_docbin
from .sst import SST2_LABELS, SST5_LABELS, read_sst_trees, read_stsa

TWITTER_FIN_LABELS = ("Bearish", "Bullish", "Neutral")
CONLL_LABELS = ("LOC", "MISC", "ORG", "PER")
WNUT17_LABELS = ("corporation", "creative-work", "group", "location", "person", "product")

Reader = Callable[[Path, Language], Iterable[Doc]]


@dataclass(frozen=True)
class DatasetSpec:
    """How to turn one benchmark's files (relative to the data root) into DocBin splits.

    `files` maps a split name to a file. When `resplit` is set, the docs of all files are pooled
    and re-split by it (AG News ships only its test file).
    """

    task: str
    lang: str
    labels: tuple[str, ...]
    files: Mapping[str, str]
    read: Reader
    resplit: Callable[[list[Doc]], dict[str, list[Doc]]] | None = None


def stratified_split(
    docs: Sequence[Doc], *, fractions: Mapping[str, float] | None = None, seed: int = 0
) -> dict[str, list[Doc]]:
    """Split single-label docs per class into train/dev/test (80/10/10 by default), seeded.

    Classes are taken in sorted order and shuffled with one `random.Random(seed)`; each split
    gets round(n * fraction) docs of a class and the last split the rest. Splits keep the input
    order, so the result depends only on the docs and the seed.
    """
    fractions = fractions or {"train": 0.8, "dev": 0.1, "test": 0.1}
    names = list(fractions)
    by_label: dict[str, list[int]] = {}
    for i, doc in enumerate(docs):
        by_label.setdefault(max(doc.cats, key=doc.cats.__getitem__), []).append(i)
    rng = random.Random(seed)
    chosen: dict[str, list[int]] = {name: [] for name in names}
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        cut = 0
        for name in names[:-1]:
            size = round(len(indices) * fractions[name])
            chosen[name] += indices[cut : cut + size]
            cut += size
        chosen[names[-1]] += indices[cut:]
    return {name: [docs[i] for i in sorted(chosen[name])] for name in names}


def _read_sst2(path: Path, nlp: Language) -> Iterable[Doc]:
    """GLUE `dev.tsv` (header sentence, label) or a harvardnlp `stsa.binary.*` file."""
    if path.suffix == ".tsv":
        label_map = dict(zip("01", SST2_LABELS, strict=True))
        return read_csv_textcat(
            path,
            nlp=nlp,
            text_field="sentence",
            labels=SST2_LABELS,
            label_map=label_map,
            delimiter="\t",
        )
    return read_stsa(path, vocab=nlp.vocab)


def _conll_files(folder: str, train: str, dev: str, test: str) -> dict[str, str]:
    return {"train": f"{folder}/{train}", "dev": f"{folder}/{dev}", "test": f"{folder}/{test}"}


def _conll_reader(scheme: str, labels: Sequence[str]) -> Reader:
    """A preset's reader: its CoNLL files with their tag scheme and labels, every line read
    as data (the benchmark files have no comment lines)."""

    def read(path: Path, nlp: Language) -> Iterator[Doc]:
        return read_conll(path, vocab=nlp.vocab, scheme=scheme, labels=labels, comment=None)

    return read


DATASETS: dict[str, DatasetSpec] = {
    "conll2003": DatasetSpec(
        "ner",
        "en",
        CONLL_LABELS,
        _conll_files("conll2003", "eng.train", "eng.testa", "eng.testb"),
        _conll_reader("iob1", CONLL_LABELS),
    ),
    "conll2003_iob2": DatasetSpec(
        "ner",
        "en",
        CONLL_LABELS,
        _conll_files("conll2003/iob2_NguyenHoangAn0511", "eng.train", "eng.testa", "eng.testb"),
        _conll_reader("iob2", CONLL_LABELS),
    ),
    "wnut17": DatasetSpec(
        "ner",
        "en",
        WNUT17_LABELS,
        _conll_files(
            "wnut17", "wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"
        ),
        _conll_reader("iob2", WNUT17_LABELS),
    ),
    # The Spanish files are called IOB2 but start a few entities with I-: read them leniently.
    "conll2002_es": DatasetSpec(
        "ner",
        "es",
        CONLL_LABELS,
        _conll_files("conll2002", "esp.train", "esp.testa", "esp.testb"),
        _conll_reader("auto", CONLL_LABELS),
    ),
    "conll2002_nl": DatasetSpec(
        "ner",
        "nl",
        CONLL_LABELS,
        _conll_files("conll2002", "ned.train", "ned.testa", "ned.testb"),
        _conll_reader("iob2", CONLL_LABELS),
    ),
    "sst2": DatasetSpec(
        "textcat",
        "en",
        SST2_LABELS,
        {
            **_conll_files(
                "sst2/harvardnlp_stsa_binary",
                "stsa.binary.train",
                "stsa.binary.dev",
                "stsa.binary.test",
            ),
            "glue_dev": "sst2/dev.tsv",
        },
        _read_sst2,
    ),
    "sst5": DatasetSpec(
        "textcat",
        "en",
        SST5_LABELS,
        _conll_files("sst5/trees", "train.txt", "dev.txt", "test.txt"),
        lambda path, nlp: read_sst_trees(path, vocab=nlp.vocab),
    ),
    "ag_news": DatasetSpec(
        "textcat",
        "en",
        ("World", "Sports", "Business", "Sci/Tech"),
        {"all": "ag_news/test.csv"},
        lambda path, nlp: read_ag_news(path, nlp=nlp),
        resplit=stratified_split,
    ),
    "twitter_fin": DatasetSpec(
        "textcat",
        "en",
        TWITTER_FIN_LABELS,
        {
            "train": "twitter_financial_news_sentiment/sent_train.csv",
            "dev": "twitter_financial_news_sentiment/sent_valid.csv",
        },
        lambda path, nlp: read_csv_textcat(
            path,
            nlp=nlp,
            labels=TWITTER_FIN_LABELS,
            label_map=dict(zip("012", TWITTER_FIN_LABELS, strict=True)),
        ),
    ),
}


def convert_dataset(name: str, data_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Convert a registered benchmark under `data_dir` into `out_dir/<split>.spacy` DocBins.

    Splits are train/dev/test, except: twitter_fin has train/dev (dev is the published validation
    set; there is no test set), sst2 adds `glue_dev` (GLUE's dev.tsv) to the stsa.binary splits,
    and ag_news is a stratified 80/10/10 split (seed 0) of its only file, test.csv. Every split is
    read before any file is written.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    spec = DATASETS[name]
    nlp = spacy.blank(spec.lang)
    splits = {
        split: list(spec.read(Path(data_dir) / relative, nlp))
        for split, relative in spec.files.items()
    }
    if spec.resplit is not None:
        splits = spec.resplit([doc for docs in splits.values() for doc in docs])
    paths = {split: Path(out_dir) / f"{split}.spacy" for split in splits}
    for split, docs in splits.items():
        write_docbin(docs, paths[split])
    return paths
