"""The Python API for Ray users: annotate a ``ray.data.Dataset`` with a spaCy pipeline.

    import ray
    from spacy_lsllama.tagging.ray_data import tag_dataset

    texts = ray.data.read_parquet("s3://bucket/docs/")            # a "text" column
    tagged = tag_dataset(texts, "./training/model-best", actors=4, gpus_per_actor=1)
    tagged.write_parquet("s3://bucket/tagged/")

Each row keeps its columns and gains ``ents`` (and ``spans``, ``cats`` where the pipeline
sets them), as `lsllama tag` adds them to a record. Actors load the pipeline once each.
Rows come back in input order only with ``DataContext.execution_options.preserve_order``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .ray_engine import PipelineTagger, import_ray

if TYPE_CHECKING:
    from ray.data import Dataset


class DatasetTagger:
    """The ``map_batches`` callable: one pipeline per actor, batches of rows in and out."""

    def __init__(
        self, model: str, text_column: str, max_chars: int, use_gpu: bool, compile: bool
    ) -> None:
        self.tagger = PipelineTagger(model, max_chars, use_gpu, compile)
        self.text_column = text_column

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = list(batch[self.text_column])
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(
                    f"column {self.text_column!r} holds {type(text).__name__} {text!r}, "
                    "not a string"
                )
        nlp, builder = self.tagger.nlp, self.tagger.builder
        with nlp.memory_zone():
            added = [builder.annotations(doc) for doc in nlp.pipe(texts, batch_size=len(texts))]
        columns = dict(batch)
        for name in added[0] if added else ():
            columns[name] = [annotations[name] for annotations in added]
        return columns


def tag_dataset(
    dataset: Dataset,
    model: str,
    *,
    text_column: str = "text",
    batch_size: int = 64,
    actors: int = 1,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    max_chars: int = 1_000_000,
    compile: bool = False,
) -> Dataset:
    """``dataset`` with the annotations of pipeline ``model`` (a path or package name that
    loads on every node) added to each row, computed lazily by ``actors`` actors.

    A dataset of plain strings (``ray.data.from_items(["...", ...])``) has its texts in
    column ``"item"``: pass ``text_column="item"``.
    """
    ray = import_ray()
    return dataset.map_batches(
        DatasetTagger,
        fn_constructor_kwargs={
            "model": model,
            "text_column": text_column,
            "max_chars": max_chars,
            "use_gpu": gpus_per_actor > 0,
            "compile": compile,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor,
        udf_modifying_row_count=False,
    )
