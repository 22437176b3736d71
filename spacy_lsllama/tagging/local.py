"""The local engine: spaCy's ``nlp.pipe`` in this process, or in its worker processes.

Workers (``n_process > 1``) are forked, as ``multiprocessing`` starts processes on Linux.
torch's CPU thread pool is GNU OpenMP's, which is not fork-safe: once a process has run a
parallel region on several threads, a process forked from it hangs at its first one (an
LS-LLaMA pipeline's workers then never tag a line: loading SmolLM2 in bfloat16 runs such
regions). So a worker runs one torch thread, or, where the parent loaded its pipeline on one
thread (`fork_safe_threads`), its share of the parent's threads.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.util import register_after_fork
from types import FrameType

import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc

from ..pipeline.compilation import compile_pipeline
from .compute import Facts, compute_facts
from .engine import Item, Outcome, text_of
from .errors import CommandError
from .lines import Record
from .records import OutputPlan, RecordBuilder, Skipped

# Strings that documents add to the vocabulary are freed after about this many documents,
# so memory does not grow with the size of the input (see Language.memory_zone).
DOCS_PER_MEMORY_ZONE = 10_000


def load_pipeline(model: str, gpu_id: int, max_chars: int, compile: bool) -> Language:
    """Load ``model``, on GPU ``gpu_id`` if it is not -1, accepting texts up to ``max_chars``.

    With ``compile``, its encoders predict through torch.compile (`compile_pipeline`).
    """
    if gpu_id >= 0:
        try:
            spacy.require_gpu(gpu_id)
        except ValueError as err:
            raise CommandError(f"cannot use GPU {gpu_id}: {err}") from None
    try:
        nlp = spacy.load(model)
    except (OSError, ValueError, ImportError) as err:
        raise CommandError(f"cannot load model {model!r}: {err}") from None
    if compile:
        try:
            compile_pipeline(nlp)
        except ValueError as err:
            raise CommandError(f"--compile: {err}") from None
    nlp.max_length = max_chars
    return nlp


def fork_safe_threads(n_process: int) -> int:
    """Keep this process to one torch thread from now on, so that the workers forked from it
    can run several (see the module docstring); return each worker's share of its threads
    (at least 1). Call it before loading the pipeline: loading runs torch too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    return max(1, threads // n_process)


class LocalEngine:
    """Run ``nlp`` over the records, ``n_process`` processes as nlp.pipe runs them.

    Each forked worker runs ``worker_threads`` torch threads: 1 unless the pipeline was
    loaded after `fork_safe_threads`, whose answer this is (more would hang the worker).
    """

    def __init__(self, nlp: Language, n_process: int = 1, worker_threads: int = 1) -> None:
        self.nlp = nlp
        self.n_process = n_process
        self.worker_threads = worker_threads
        self.builder = RecordBuilder(OutputPlan.for_pipeline(nlp))
        if n_process > 1:
            register_after_fork(self, LocalEngine._in_worker)

    def compute_facts(self) -> Facts:
        """This process's facts; with workers, theirs (each runs ``worker_threads``)."""
        return compute_facts(self.nlp, self.worker_threads if self.n_process > 1 else None)

    def _in_worker(self) -> None:
        """Run in each forked worker, before it tags anything."""
        torch.set_num_threads(self.worker_threads)

    def run(self, items: Iterable[Item], batch_size: int) -> Iterator[Outcome]:
        """Tag zone by zone; zones, like batches, start at fixed line numbers."""
        zone_lines = batch_size * max(1, DOCS_PER_MEMORY_ZONE // batch_size)
        with _interrupt_main_process_only():
            zones = itertools.groupby(items, key=lambda item: (item[0].number - 1) // zone_lines)
            for _, zone in zones:
                with self.nlp.memory_zone():
                    yield from self._tag(zone, batch_size)

    def _tag(self, items: Iterable[Item], batch_size: int) -> Iterator[Outcome]:
        texts = ((text_of(item), item) for item in items)
        docs = self.nlp.pipe(texts, as_tuples=True, batch_size=batch_size, n_process=self.n_process)
        try:
            for doc, (line, parsed) in docs:
                yield self._outcome(doc, line.number, parsed, line)
        except BaseException:
            stop_workers()
            raise

    def _outcome(self, doc: Doc, number: int, parsed: object, line: object) -> Outcome:
        if isinstance(parsed, Record):
            return self.builder.build(number, doc, parsed)
        return Skipped(line, str(parsed))  # type: ignore[arg-type]


@contextmanager
def _interrupt_main_process_only() -> Iterator[None]:
    """Let Ctrl-C stop this process but not the nlp.pipe workers forked from it.

    The workers inherit this handler and ignore the signal; the main process terminates
    them before nlp.pipe waits for them to finish.
    """
    main_process = os.getpid()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() == main_process:
            stop_workers()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_workers() -> None:
    """Terminate nlp.pipe's workers, which would otherwise block sending to this process."""
    workers = multiprocessing.active_children()
    if workers:
        warnings.filterwarnings("ignore", message=r"\[W127\]")  # workers did not finish
    for worker in workers:
        worker.terminate()
