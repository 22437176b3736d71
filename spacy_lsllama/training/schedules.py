"""A learning-rate schedule continued from a step, for a run that resumes another."""

from collections.abc import Iterable, Iterator
from itertools import islice

from thinc.api import registry


@registry.schedules("spacy-lsllama.from_step.v1")
def from_step_v1(
    schedule: Iterable[float], start_step: int, warmup_steps: int = 0
) -> Iterator[float]:
    """``schedule``'s rates from ``start_step`` on, as if the updates before had been made.

    warmup_steps: ramp the first rates up linearly over this many steps, the first update at
    1/warmup_steps of its rate (not 0: that update would be lost), the last at the full
    rate. A resumed run starts with fresh optimizer moments, and the first steps of Adam
    take full-size updates in every direction; a short ramp keeps them from undoing what
    was learned.
    """
    for step, rate in enumerate(islice(iter(schedule), start_step, None)):
        yield rate * min(1.0, (step + 1) / warmup_steps) if warmup_steps else rate
