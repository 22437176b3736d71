"""Corpus readers: from token-tagged files, JSONL, CSV/TSV, SST trees and Hugging Face datasets
to spaCy Docs, one module per input family (as spaCy's `training/converters`).

The tag-scheme code (`schemes`) lives here too, below the pipeline, so the NER component
and the scorers share it with the readers. This package imports nothing from `pipeline/`.
"""

from .conll import read_conll
from .delimited import read_ag_news, read_csv_textcat
from .docbin import write_docbin
from .errors import ConversionError
from .formats import FORMATS, convert_file
from .hf import load_hf_dataset, read_hf_dataset
from .jsonl import read_jsonl_ner, read_jsonl_textcat
from .labels import parse_label_map
from .presets import DATASETS, DatasetSpec, convert_dataset, stratified_split
from .schemes import spans_to_tags, tags_to_spans
from .sst import SST2_LABELS, SST5_LABELS, parse_sst_tree, read_sst_trees, read_stsa
from .summary import CorpusCounts, count_docs

__all__ = [
    "DATASETS",
    "FORMATS",
    "SST2_LABELS",
    "SST5_LABELS",
    "ConversionError",
    "CorpusCounts",
    "DatasetSpec",
    "convert_dataset",
    "convert_file",
    "count_docs",
    "load_hf_dataset",
    "parse_label_map",
    "parse_sst_tree",
    "read_ag_news",
    "read_conll",
    "read_csv_textcat",
    "read_hf_dataset",
    "read_jsonl_ner",
    "read_jsonl_textcat",
    "read_sst_trees",
    "read_stsa",
    "spans_to_tags",
    "stratified_split",
    "tags_to_spans",
    "write_docbin",
]
