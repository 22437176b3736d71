from itertools import islice

from thinc.api import warmup_linear

from spacy_lsllama.training.schedules import from_step_v1


def rates(schedule, n):
    return list(islice(schedule, n))


def test_from_step_gives_the_rates_the_run_would_have_had():
    whole = rates(warmup_linear(1.0, 2, 10), 12)
    assert rates(from_step_v1(warmup_linear(1.0, 2, 10), 4), 8) == whole[4:]


def test_from_step_ramps_the_first_rates_up_from_the_first_step():
    """The first update after a resume is made (at a quarter of its rate here), not lost
    at rate 0."""
    whole = rates(warmup_linear(1.0, 0, 100), 20)
    ramped = rates(from_step_v1(warmup_linear(1.0, 0, 100), 10, warmup_steps=4), 6)
    assert ramped[:4] == [whole[10] / 4, whole[11] / 2, whole[12] * 3 / 4, whole[13]]
    assert ramped[4:] == whole[14:16]
    assert rates(from_step_v1(warmup_linear(1.0, 0, 100), 10, warmup_steps=1), 2) == whole[10:12]
