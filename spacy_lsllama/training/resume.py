"""Continue a stopped `spacy train` run from its last save, in its own output directory.

A run trained with ``[training.before_update] = spacy-lsllama.training_progress.v1`` (the
shipped configs) records in every ``model-last`` how many updates it holds. To continue it:

1. the newest state (``model-last``, or ``checkpoint`` left by a continuation that stopped
   before its first save) becomes ``OUTPUT/checkpoint``, and the best pipeline so far
   ``OUTPUT/previous-best``: `spacy train` clears ``model-best`` and ``model-last`` when it
   starts, and neither may be lost;
2. ``OUTPUT/resume.cfg`` is the run's own config with every component sourced from the
   checkpoint (spaCy's way to train a trained component on), the learning-rate schedule
   continued from the updates made (``spacy-lsllama.from_step.v1``, with a short ramp: the
   optimizer's moments restart), the step budget cut by them, and the shuffling seed moved
   on by them, so the batches are not those the run began with;
3. `spacy train OUTPUT/resume.cfg --output OUTPUT` trains to the end of the budget, and the
   last step is scored on dev if the run would have scored it: spaCy counts the
   ``eval_frequency`` from a continuation's own first step, so its grid of evaluations is
   shifted and would miss the end;
4. ``model-best`` becomes the better of the continuation's best and ``previous-best`` (by
   the config's ``score_weights``, as `spacy train` chooses), and the checkpoint goes.

The continuation is not bit-for-bit the run that did not stop: the optimizer's moments and
the batch order differ. Paths in the config are read as during training: resume from the
directory the run was started in.
"""

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import srsly
from spacy.language import Language
from spacy.training import loop
from spacy.training.initialize import init_nlp
from spacy.util import load_config, resolve_dot_names
from thinc.api import Config, require_gpu

from .progress import META_KEY

CHECKPOINT = "checkpoint"
PREVIOUS_BEST = "previous-best"
RESUME_CONFIG = "resume.cfg"
PROGRESS_CALLBACK = "spacy-lsllama.training_progress.v1"
FROM_STEP = "spacy-lsllama.from_step.v1"


class ResumeError(Exception):
    """A run that cannot be continued, with the reason and the path it concerns."""


@dataclass(frozen=True)
class Progress:
    """What a saved pipeline holds: the updates made and the seconds they took."""

    steps: int
    seconds: float


@dataclass(frozen=True)
class RunState:
    """The newest saved state of a run and the run's step budget (updates in all)."""

    path: Path
    progress: Progress
    config: Config
    total_steps: int

    @property
    def finished(self) -> bool:
        # The last update of a budget of T steps has rate schedule(T): 0 for a linear decay.
        return self.progress.steps >= self.total_steps


def read_progress(model_dir: Path) -> Progress | None:
    """The progress a saved pipeline records, or None (not saved, or saved without it)."""
    meta_path = model_dir / "meta.json"
    if not meta_path.is_file() or not (model_dir / "config.cfg").is_file():
        return None
    try:
        recorded = json.loads(meta_path.read_text(encoding="utf8"))[META_KEY]
        return Progress(int(recorded["steps"]), float(recorded["seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_state(output: Path) -> RunState:
    """The state to continue ``output`` from: the saved pipeline with the most updates."""
    if not output.is_dir():
        raise ResumeError(f"{output}: no such training output directory")
    states = [
        (path, progress)
        for path in (output / "model-last", output / CHECKPOINT)
        if (progress := read_progress(path)) is not None
    ]
    if not states:
        if (output / "model-last").is_dir():
            raise ResumeError(
                f"{output / 'model-last'}: no training progress in its meta.json; only runs "
                f'trained with [training.before_update] @callbacks = "{PROGRESS_CALLBACK}" '
                "(the shipped configs) can be resumed"
            )
        raise ResumeError(f"{output}: no saved pipeline yet (the run stopped before its first "
                          "evaluation): start it again")  # fmt: skip
    path, progress = max(states, key=lambda state: state[1].steps)
    config = load_config(path / "config.cfg", interpolate=True)
    return RunState(path, progress, config, total_steps(config, path))


def total_steps(config: Config, path: Path) -> int:
    """The updates of the whole run: this config's budget plus those made before it."""
    training = config["training"]
    if not training.get("max_steps"):
        raise ResumeError(
            f"{path / 'config.cfg'}: training.max_steps is 0; only a run with a step budget "
            "can be resumed"
        )
    rate = training["optimizer"].get("learn_rate")
    start = rate.get("start_step", 0) if _is_from_step(rate) else 0
    return int(start) + int(training["max_steps"])


def continuation_config(state: RunState, checkpoint: Path, warmup_steps: int) -> Config:
    """The run's config, continued from ``state`` with its components read from
    ``checkpoint`` (see the module's docstring)."""
    config = Config(state.config).copy()
    done = state.progress.steps
    for name in config["nlp"]["pipeline"]:
        config["components"][name] = {"source": str(checkpoint.resolve()), "component": name}
    training = config["training"]
    rate = training["optimizer"]["learn_rate"]
    if _is_from_step(rate):
        rate = rate["schedule"]
    elif not isinstance(rate, dict):
        rate = {"@schedules": "constant.v1", "rate": rate}
    training["optimizer"]["learn_rate"] = {
        "@schedules": FROM_STEP,
        "start_step": done,
        "warmup_steps": warmup_steps,
        "schedule": rate,
    }
    training["max_steps"] = state.total_steps - done
    training["before_update"] = {
        "@callbacks": PROGRESS_CALLBACK,
        "start_step": done,
        "start_seconds": state.progress.seconds,
    }
    if training.get("seed") is not None:
        training["seed"] = int(training["seed"]) + done
    _check_corpora(config, state.path)
    return config


def _is_from_step(rate: Any) -> bool:
    return isinstance(rate, dict) and rate.get("@schedules") == FROM_STEP


def _check_corpora(config: Config, state_path: Path) -> None:
    for name, reader in config.get("corpora", {}).items():
        path = reader.get("path") if isinstance(reader, dict) else None
        if isinstance(path, str) and path and not Path(path).exists():
            raise ResumeError(
                f"{state_path / 'config.cfg'}: corpora.{name}.path {path} not found; resume "
                "from the directory the run was started in"
            )


def dev_score(model_dir: Path, weights: dict[str, float | None]) -> float:
    """The weighted dev score `spacy train` chose ``model_dir`` by (from its meta)."""
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf8"))
    performance = meta.get("performance", {})
    return sum(float(performance.get(key) or 0.0) * w for key, w in weights.items() if w)


def better_best(output: Path, config: Config) -> Path | None:
    """Of ``model-best`` and ``previous-best``, the one with the higher weighted dev score
    (a tie goes to ``model-best``, the newer); None when neither exists."""
    best, previous = output / "model-best", output / PREVIOUS_BEST
    if not previous.is_dir():
        return best if best.is_dir() else None
    if not best.is_dir():
        return previous
    weights = config["training"]["score_weights"]
    return best if dev_score(best, weights) >= dev_score(previous, weights) else previous


def prepare(output: Path, warmup_steps: int) -> RunState:
    """Steps 1 and 2: keep the newest state and the best pipeline, write the config."""
    state = find_state(output)
    if state.finished:
        return state
    checkpoint = output / CHECKPOINT
    config = continuation_config(state, checkpoint, warmup_steps)  # checked before any move
    if state.path != checkpoint:
        _replace(state.path, checkpoint)
    if better_best(output, config) == output / "model-best":
        _replace(output / "model-best", output / PREVIOUS_BEST)
    config.to_disk(output / RESUME_CONFIG)
    return RunState(checkpoint, state.progress, config, state.total_steps)


def finish(output: Path, config: Config) -> None:
    """Step 4: the better best is ``model-best``; the continuation's inputs go."""
    previous = output / PREVIOUS_BEST
    if better_best(output, config) == previous:
        _replace(previous, output / "model-best")
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(output / CHECKPOINT, ignore_errors=True)


def last_step_unscored(config: Config) -> bool:
    """Whether the run, unstopped, would have scored its last step on dev and this
    continuation does not: spaCy scores every ``eval_frequency`` steps from its own step 0."""
    training = config["training"]
    rate = training["optimizer"].get("learn_rate")
    start = int(rate.get("start_step", 0)) if _is_from_step(rate) else 0
    steps, frequency = int(training["max_steps"]), int(training["eval_frequency"])
    return (start + steps) % frequency == 0 and steps % frequency != 0


def score_last_step(nlp: Language, output: Path) -> None:
    """Score the final weights on dev as `spacy train` scores an evaluation, record the
    scores in ``model-last``'s meta, and make it ``model-best`` if it scores higher."""
    config = nlp.config.interpolate()
    training = config["training"]
    (dev_corpus,) = resolve_dot_names(config, [training["dev_corpus"]])
    weights = training["score_weights"]
    _, scores = loop.create_evaluation_callback(nlp, dev_corpus, weights)()
    performance = dict(nlp.meta.get("performance", {}))  # the losses stay
    performance.update({key: scores.get(key, 0.0) for key in weights})
    nlp.meta["performance"] = performance
    last, best = output / "model-last", output / "model-best"
    srsly.write_json(last / "meta.json", nlp.meta)  # the weights are saved already
    if not best.is_dir() or dev_score(last, weights) > dev_score(best, weights):
        shutil.rmtree(best, ignore_errors=True)
        shutil.copytree(last, best)


def train_continuation(output: Path, use_gpu: int) -> None:
    """Step 3: `spacy train OUTPUT/resume.cfg --output OUTPUT`, then the last step's score."""
    if use_gpu >= 0:
        require_gpu(use_gpu)
    config = load_config(output / RESUME_CONFIG, interpolate=False)
    nlp = init_nlp(config, use_gpu=use_gpu)
    loop.train(nlp, output, use_gpu=use_gpu, stdout=sys.stdout, stderr=sys.stderr)
    if last_step_unscored(nlp.config):
        score_last_step(nlp, output)


def resume(output: Path, *, use_gpu: int = -1, warmup_steps: int = 20) -> RunState:
    """Continue the run in ``output`` to the end of its budget (steps 1-4); its final state."""
    state = prepare(output, warmup_steps)
    if not state.finished:
        train_continuation(output, use_gpu)
        finish(output, state.config)
    return find_state(output)


def _replace(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, replacing what was there (same file system: a rename)."""
    if target.exists():
        shutil.rmtree(target)
    os.replace(source, target)
