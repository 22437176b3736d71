"""The Ray engine: batches fixed by line number, tagged by a pool of Ray actors, in order.

The driver (`spacy_lsllama.tagging.run`) still reads, checks and writes every line; this
engine only sends each batch's records to an actor and hands the outcomes back in input
order. Each actor loads the pipeline once, from its path or package name, on its own node
(the pipeline is never pickled through the object store) and builds the output lines with
the same `RecordBuilder` as the local engine, so both engines write the same bytes.

Ray is an optional extra (``pip install "spacy-lsllama[ray]"``) imported only when used.
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .compute import Facts, compute_facts, merge_facts
from .engine import Item, Outcome
from .errors import CommandError
from .lines import Record
from .local import load_pipeline
from .records import OutputPlan, RecordBuilder, Skipped, Tagged

INSTALL_HINT = 'pip install "spacy-lsllama[ray]"'
# How long actors may wait for a place on the cluster before the run stops (loading the
# pipeline afterwards has no limit: a large model takes what it takes).
PLACEMENT_SECONDS = 30.0
# How long placed actors may take to start their worker processes: on a busy machine, Python
# and the package's imports can take longer than PLACEMENT_SECONDS.
STARTUP_SECONDS = 300.0
# How long to try reaching a cluster's address before saying it cannot be reached (Ray itself
# retries for minutes, printing warnings).
CONNECT_SECONDS = 10.0
# Batches sent to one actor before its first one comes back: one running, one waiting.
BATCHES_PER_ACTOR = 2

Payload = list[tuple[int, Record | None]]


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line error naming the extra that installs it."""
    try:
        import ray
        import ray.data  # noqa: F401
        import ray.util.scheduling_strategies  # noqa: F401
    except ImportError:
        raise CommandError(f"--engine ray needs Ray Data: {INSTALL_HINT}") from None
    return ray


@dataclass(frozen=True)
class RaySettings:
    """Where and how many actors run. ``address`` None starts a local cluster (and stops it)."""

    address: str | None = None
    actors: int = 1
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0


class PipelineTagger:
    """What runs in each actor: one pipeline, loaded once, turning batches into outcomes.

    With ``use_gpu`` the pipeline runs on device 0, which is the GPU Ray gave the actor.
    """

    def __init__(self, model: str, max_chars: int, use_gpu: bool, compile: bool) -> None:
        self.nlp = load_pipeline(model, 0 if use_gpu else -1, max_chars, compile)
        self.builder = RecordBuilder(OutputPlan.for_pipeline(self.nlp))

    def compute_facts(self) -> Facts:
        """This actor's facts: its dtype, its threads (Ray sets them from its CPUs), ..."""
        return compute_facts(self.nlp)

    def tag(self, batch: Payload) -> list[Tagged | None]:
        """One nlp.pipe batch; a bad line (None) holds its place as an empty document."""
        texts = [record.text if record is not None else "" for _, record in batch]
        with self.nlp.memory_zone():
            docs = self.nlp.pipe(texts, batch_size=len(texts))
            return [
                self.builder.build(number, doc, record) if record is not None else None
                for (number, record), doc in zip(batch, docs)
            ]


class TaggerActor:
    """The actor class: placed first (`ready`), then loaded (`load`), so a cluster that
    cannot place it is told apart from a pipeline that is slow to load."""

    def __init__(self) -> None:
        self.tagger: PipelineTagger | None = None

    def ready(self) -> bool:
        return True

    def load(self, model: str, max_chars: int, use_gpu: bool, compile: bool) -> Facts:
        """Load the pipeline; return its compute facts."""
        self.tagger = PipelineTagger(model, max_chars, use_gpu, compile)
        return self.tagger.compute_facts()

    def tag(self, batch: Payload) -> list[Tagged | None]:
        assert self.tagger is not None, "load() first"
        return self.tagger.tag(batch)


class RayEngine:
    """Tag with a pool of actors on a Ray cluster; a context manager that owns the pool.

    It joins ``settings.address``, starts a local cluster when there is none, or uses the
    cluster this process is already connected to (which it then leaves running).
    """

    actor_class: type[TaggerActor] = TaggerActor

    def __init__(
        self, settings: RaySettings, model: str, max_chars: int, compile: bool = False
    ) -> None:
        self.settings = settings
        self.model = model
        self.max_chars = max_chars
        self.compile = compile
        self.ray = import_ray()
        self.actors: list[Any] = []
        self.group: Any = None  # the actors' placement group
        self.owns_connection = False
        self.facts: Facts = {}

    def compute_facts(self) -> Facts:
        """The actors' compute facts, merged (`merge_facts`: a list where they differ)."""
        return self.facts

    def __enter__(self) -> RayEngine:
        try:
            self._connect()
            check_resources(self.settings, self.ray.cluster_resources())
            self.actors = self._place()
            self._load()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.group is not None:
            self.ray.util.remove_placement_group(self.group)
            self.group = None
        if self.owns_connection:
            self.ray.shutdown()
            self.owns_connection = False

    def _connect(self) -> None:
        if self.ray.is_initialized():
            return
        address = self.settings.address or "local"
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if address == "local":
            options["include_dashboard"] = False
        else:
            check_reachable(address)
        try:
            self.ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise CommandError(f"cannot connect to the Ray cluster at {address}: {err}") from None
        self.owns_connection = True

    def _place(self) -> list[Any]:
        """Reserve the actors' resources as one Ray placement group, then start the actors.

        Placement stops within PLACEMENT_SECONDS if the cluster cannot hold them now. Placed
        actors get STARTUP_SECONDS to start their worker processes (Python and the package's
        imports, slow on a busy machine): a slow start is not a placement failure."""
        settings = self.settings
        each = {"CPU": settings.cpus_per_actor, "GPU": settings.gpus_per_actor}
        bundle = {name: amount for name, amount in each.items() if amount > 0}
        strategies: list[Any] = ["DEFAULT"] * settings.actors
        if bundle:  # nothing to reserve for actors that ask for nothing
            self.group = self.ray.util.placement_group([bundle] * settings.actors)
            placed, _ = self.ray.wait([self.group.ready()], timeout=PLACEMENT_SECONDS)
            if not placed:
                raise CommandError(
                    f"the Ray cluster could not place {_request(settings)} in "
                    f"{PLACEMENT_SECONDS:.0f} s; it has {_describe(self.ray.available_resources())}"
                    " free: ask for fewer or smaller actors (--actors, --cpus-per-actor, "
                    "--gpus-per-actor)"
                )
            strategy = self.ray.util.scheduling_strategies.PlacementGroupSchedulingStrategy
            strategies = [
                strategy(self.group, placement_group_bundle_index=i) for i in range(settings.actors)
            ]
        actors = [
            self.ray.remote(
                num_cpus=settings.cpus_per_actor,
                num_gpus=settings.gpus_per_actor,
                scheduling_strategy=strategy,
            )(self.actor_class).remote()
            for strategy in strategies
        ]
        self.actors = actors
        _, waiting = self.ray.wait(
            [actor.ready.remote() for actor in actors],
            num_returns=len(actors),
            timeout=STARTUP_SECONDS,
        )
        if waiting:
            raise CommandError(
                f"{len(waiting)} of {len(actors)} Ray actors did not start in "
                f"{STARTUP_SECONDS:.0f} s, though the cluster placed them: see the Ray logs of "
                "their worker processes"
            )
        return actors

    def _load(self) -> None:
        use_gpu = self.settings.gpus_per_actor > 0
        loads = [
            actor.load.remote(self.model, self.max_chars, use_gpu, self.compile)
            for actor in self.actors
        ]
        try:
            self.facts = merge_facts(self.ray.get(loads))
        except self.ray.exceptions.RayError as err:
            raise CommandError(f"a Ray actor could not load the pipeline: {_cause(err)}") from None

    def run(self, items: Iterable[Item], batch_size: int) -> Iterator[Outcome]:
        """Keep every actor busy, and yield each batch's outcomes once all before it are out."""
        ray = self.ray
        batches = _batches(items, batch_size)
        window: deque[tuple[list[Item], Any]] = deque()
        owner: dict[Any, int] = {}
        busy = [0] * len(self.actors)
        done: set[Any] = set()
        exhausted = False
        while True:
            while not exhausted and len(window) < BATCHES_PER_ACTOR * len(self.actors):
                actor = min(range(len(busy)), key=busy.__getitem__)
                batch = next(batches, None)
                if batch is None:
                    exhausted = True
                    break
                ref = self.actors[actor].tag.remote(_payload(batch))
                busy[actor] += 1
                owner[ref] = actor
                window.append((batch, ref))
            if not window:
                return
            running = [ref for _, ref in window if ref not in done]
            if running:
                finished, _ = ray.wait(running, num_returns=1)
                for ref in finished:
                    done.add(ref)
                    busy[owner.pop(ref)] -= 1
            while window and window[0][1] in done:
                batch, ref = window.popleft()
                done.discard(ref)
                yield from _outcomes(batch, self._result(batch, ref))

    def _result(self, batch: list[Item], ref: Any) -> list[Tagged | None]:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as err:
            first, last = batch[0][0].number, batch[-1][0].number
            raise CommandError(
                f"Ray failed to tag lines {first:,}-{last:,}: {_cause(err)}"
            ) from None


def check_resources(settings: RaySettings, cluster: dict[str, float]) -> None:
    """Refuse at once what the cluster as it is now can never hold (GPUs on a CPU cluster)."""
    for name, option, each in (
        ("GPU", "--gpus-per-actor", settings.gpus_per_actor),
        ("CPU", "--cpus-per-actor", settings.cpus_per_actor),
    ):
        needed = each * settings.actors
        have = cluster.get(name, 0.0)
        if needed > have:
            raise CommandError(
                f"{option} {each:g} x --actors {settings.actors} needs {needed:g} {name}s; "
                f"the Ray cluster has {have:g} ({_describe(cluster)})"
            )


def check_reachable(address: str) -> None:
    """Refuse a ``host:port`` or ``ray://host:port`` address nothing answers on."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not port.isdigit():
        return  # "auto": Ray looks for a cluster on this machine and says if there is none
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise CommandError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def _batches(items: Iterable[Item], batch_size: int) -> Iterator[list[Item]]:
    """Items grouped by line number: lines k*B+1 .. (k+1)*B form batch k."""
    batch: list[Item] = []
    for item in items:
        if batch and (item[0].number - 1) // batch_size != (batch[0][0].number - 1) // batch_size:
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _payload(batch: list[Item]) -> Payload:
    """What an actor needs: line numbers and records (a bad line's record is None)."""
    return [(line.number, parsed if isinstance(parsed, Record) else None) for line, parsed in batch]


def _outcomes(batch: list[Item], results: list[Tagged | None]) -> Iterator[Outcome]:
    """Pair each line with its result, checking the actor answered for that very line."""
    if len(results) != len(batch):
        raise CommandError(f"a Ray actor returned {len(results)} results for {len(batch)} lines")
    for (line, parsed), result in zip(batch, results):
        if result is None and not isinstance(parsed, Record):
            yield Skipped(line, str(parsed))
        elif result is not None and result.number == line.number:
            yield result
        else:
            number = "nothing" if result is None else f"line {result.number}"
            raise CommandError(f"a Ray actor returned {number} for line {line.number}")


def _request(settings: RaySettings) -> str:
    return f"{settings.actors} x ({settings.cpus_per_actor:g} CPU, {settings.gpus_per_actor:g} GPU)"


def _describe(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources.get(name, 0.0):g} {name}" for name in ("CPU", "GPU"))


def _cause(err: BaseException) -> str:
    """The first line of what went wrong inside an actor, without Ray's traceback."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        return str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    lines = str(err).strip().splitlines()
    return lines[-1] if lines else type(err).__name__
