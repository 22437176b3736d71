"""Train and score every results table of the README in one command (NER and classification).

Each experiment is `spacy train` on a converted corpus (configs/ner.cfg or configs/textcat.cfg
with command-line overrides), then `lsllama evaluate` of its model on the reported split:
NER on CoNLL-2003 (the recipe unmasked and causal, --seeds each) and WNUT-17 (model-best,
selected on dev; --epochs of warm-up and linear decay), the NER ablation on CoNLL-2003 dev
(unmasked layers none / top third / middle third / all, adapter layers top 10 / 15 / all 30,
at a budget of --ablation-epochs) and a sweep of the recipe's learning rate, LoRA rank and
LoRA targets at that budget, classification on SST-2, SST-5, Twitter-Fin and AG News
(configs/textcat.cfg's recipe over --textcat-epochs, model-last: SST-2 and Twitter-Fin are
reported on the only labelled split beside train, so nothing may be selected on it), and the
pooling ablation {last, max, mean} x {causal, bidirectional} on SST-2 and SST-5.

A run writes RUNS/NAME (the pipelines), RUNS/NAME.log (the training console), and
RUNS/NAME.scores.json (evaluation, wall times, the commands); scores are taken in float32,
the dtype of training (--eval-dtype), so a CPU with AMX, where a loaded pipeline predicts in
bfloat16, scores as any other host; a run whose scores exist is
skipped, and a run stopped midway is continued from its last save (`lsllama resume`), so an
interrupted call resumes and a finished one only redraws the tables
(experiments.json/.md, and accuracy.* with the dev-F1 plot of the CoNLL-2003 pair).

    lsllama convert conll2003 corpus/conll2003 --data-dir ../shared/datasets   # and the others
    python benchmarks/experiments.py --base-model models/smollm2-135m --jobs 2
    python benchmarks/experiments.py --only sst5 --dry-run   # the commands, nothing run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import accuracy
from common import REPO_DIR, RESULTS_DIR, log, markdown_table, write_results

from spacy_lsllama.training.resume import ResumeError, RunState, find_state

NER_CORPORA = {"conll2003": "test", "wnut17": "test"}
TEXTCAT_CORPORA = {"sst2": "glue_dev", "sst5": "test", "twitter_fin": "dev", "ag_news": "test"}
# Logged during training only; SST-2's own dev split holds the GLUE dev sentences reported.
TEXTCAT_DEV = {"sst2": "test"}
ABLATION_CORPORA = ("sst2", "sst5")
POOLINGS = ("last", "max", "mean")
BATCH_SIZE = 8  # configs/ner.cfg's batcher: the schedule's steps per epoch follow from it
# NER ablation on CoNLL-2003 dev: (name, unmasked layers, adapter layers) of SmolLM2's 30.
NER_ABLATION = (
    ("unmasked-none", "none", "top 10"),
    ("unmasked-top10", "top 10", "top 10"),
    ("unmasked-middle10", "middle 10", "top 10"),
    ("unmasked-all", "all", "top 10"),
    ("adapters-top15", "top 15", "top 15"),
    ("adapters-all30", "all", "all"),
)
# The recipe's other settings, one changed at a time, on CoNLL-2003 dev at the ablation's
# budget: (name, config setting, value). The recipe's own row is the ablation's
# adapters-all30 (every layer unmasked and adapted, as configs/ner.cfg is now).
NER_SWEEP = (
    ("lr-1e-4", "training.optimizer.learn_rate.initial_rate", "0.0001"),
    ("lr-1e-3", "training.optimizer.learn_rate.initial_rate", "0.001"),
    ("rank-32", "components.llm.model.lora.r", "32"),
    ("targets-qkvo", "components.llm.model.lora.target_modules",
     '["q_proj","k_proj","v_proj","o_proj"]'),
)  # fmt: skip
RECIPE_AT_ABLATION_BUDGET = "conll2003-ablation-adapters-all30"


@dataclass
class Experiment:
    """One training run and the evaluation of its model on the reported split."""

    name: str
    config: str  # "ner" or "textcat"
    corpus: str
    split: str
    bidirectional: bool
    pooling: str | None = None
    dev: str = "dev"
    model: str = "model-best"
    overrides: dict[str, str] = field(default_factory=dict)
    epochs: float | None = None  # the schedule's length; None: --epochs or --textcat-epochs
    seed: int = 0

    def train_command(self, args: argparse.Namespace, runs: Path) -> list[str]:
        settings = {
            "paths.base_model": str(args.base_model),
            "paths.train": f"corpus/{self.corpus}/train.spacy",
            "paths.dev": f"corpus/{self.corpus}/{self.dev}.spacy",
            "system.seed": str(self.seed),
            **(self._ner_settings(args) if self.config == "ner" else self._textcat_settings(args)),
            **self.overrides,
        }
        command = [sys.executable, "-m", "spacy", "train", f"configs/{self.config}.cfg"]
        command += ["--output", str(runs / self.name), "--gpu-id", str(args.gpu_id)]
        return command + [arg for key, value in settings.items() for arg in (f"--{key}", value)]

    def _schedule(
        self, args: argparse.Namespace, epochs: float, learn_rate: float
    ) -> dict[str, str]:
        """The recipe's schedule over whole epochs of the corpus: 5 % warm-up, linear decay to
        the end, where training stops; dev scored every quarter epoch."""
        train = REPO_DIR / f"corpus/{self.corpus}/train.spacy"
        if train.is_file():
            steps_per_epoch = -(-count_docs(train) // BATCH_SIZE)
            steps = round(steps_per_epoch * epochs)
            total, warmup = str(steps), str(max(1, steps // 20))
            quarter = str(max(1, steps_per_epoch // 4))
        else:  # --dry-run before `lsllama convert`: show where the counts go
            total = warmup = quarter = f"<from corpus/{self.corpus}/train.spacy>"
        settings = {
            "training.optimizer.learn_rate.total_steps": total,
            "training.optimizer.learn_rate.warmup_steps": warmup,
            "training.optimizer.learn_rate.initial_rate": str(learn_rate),
            "training.eval_frequency": quarter,
        }
        if not self.bidirectional:
            settings["components.llm.model.unmasked_layers"] = "none"
        return settings

    def _ner_settings(self, args: argparse.Namespace) -> dict[str, str]:
        return {
            **self._schedule(args, self.epochs or args.epochs, args.ner_learn_rate),
            "corpora.dev.limit": str(args.ner_dev_limit),
        }

    def _textcat_settings(self, args: argparse.Namespace) -> dict[str, str]:
        return {
            **self._schedule(args, self.epochs or args.textcat_epochs, args.learn_rate),
            "corpora.dev.limit": str(args.dev_limit),
        }

    def resume_command(self, args: argparse.Namespace, runs: Path) -> list[str]:
        """`lsllama resume` of a stopped run: its own config, continued where it was saved."""
        return [sys.executable, "-m", "spacy_lsllama.cli", "resume", str(runs / self.name),
                "--gpu-id", str(args.gpu_id)]  # fmt: skip

    def evaluate_command(
        self, args: argparse.Namespace, runs: Path, outside_penalty: float | None = None
    ) -> list[str]:
        """`lsllama evaluate` on the reported split; with `outside_penalty`, the NER
        component decodes with it (NAME.eval-tuned.json)."""
        suffix, options = "eval", []
        if outside_penalty is not None:
            suffix = "eval-tuned"
            options = ["--components.ner.outside_penalty", f"{outside_penalty:g}"]
        return [sys.executable, "-m", "spacy_lsllama.cli", "evaluate",
                str(runs / self.name / self.model), f"corpus/{self.corpus}/{self.split}.spacy",
                "--output", str(runs / f"{self.name}.{suffix}.json"),
                "--gpu-id", str(args.gpu_id), "--dtype", args.eval_dtype, *options]  # fmt: skip

    @property
    def tuned(self) -> bool:
        """An NER model scored on test also gets its outside_penalty chosen on dev."""
        return self.config == "ner" and self.split == "test"

    def tune_command(self, args: argparse.Namespace, runs: Path) -> list[str]:
        """`lsllama tune-ner` on dev: the outside_penalty that scores best there."""
        return [sys.executable, "-m", "spacy_lsllama.cli", "tune-ner",
                str(runs / self.name / self.model), f"corpus/{self.corpus}/{self.dev}.spacy",
                "--output", str(runs / f"{self.name}.tune.json"),
                "--gpu-id", str(args.gpu_id), "--dtype", args.eval_dtype]  # fmt: skip


@cache
def count_docs(path: Path) -> int:
    """Documents in a .spacy file: with the batch size, the schedule's steps per epoch (read
    once per corpus, not once per experiment)."""
    from spacy.tokens import DocBin

    return len(DocBin().from_disk(path))


def grid(seeds: list[int], ablation_epochs: float) -> list[Experiment]:
    """Every experiment of the README's results, in the order they are reported."""
    experiments = [
        Experiment(f"{corpus}-{mask}-s{seed}", "ner", corpus, split, mask == "bidir", seed=seed)
        for corpus, split in NER_CORPORA.items()
        for mask in (("bidir", "causal") if corpus == "conll2003" else ("bidir",))
        for seed in (seeds if corpus == "conll2003" else seeds[:1])
    ]
    experiments += [
        Experiment(
            f"conll2003-ablation-{name}", "ner", "conll2003", "dev", unmasked != "none",
            epochs=ablation_epochs,
            overrides={"components.llm.model.unmasked_layers": unmasked,
                       "components.llm.model.lora.layers": adapters},
        )
        for name, unmasked, adapters in NER_ABLATION
    ]  # fmt: skip
    experiments += [
        Experiment(f"conll2003-sweep-{name}", "ner", "conll2003", "dev", True,
                   epochs=ablation_epochs, overrides={setting: value})
        for name, setting, value in NER_SWEEP
    ]  # fmt: skip
    main_cells = (("bidir", "max"), ("causal", "last"))
    ablation_cells = [(mask, pooling) for mask in ("bidir", "causal") for pooling in POOLINGS]
    for corpora, cells in ((TEXTCAT_CORPORA, main_cells), (ABLATION_CORPORA, ablation_cells)):
        for corpus in corpora:
            for mask, pooling in cells:
                name = f"{corpus}-{mask}-{pooling}"
                if any(e.name == name for e in experiments):  # in the main table already
                    continue
                experiments.append(
                    Experiment(
                        name, "textcat", corpus, TEXTCAT_CORPORA[corpus], mask == "bidir",
                        pooling, dev=TEXTCAT_DEV.get(corpus, "dev"), model="model-last",
                        overrides={"components.textcat.model.pooling": pooling},
                    )
                )  # fmt: skip
    return experiments


def run_one(experiment: Experiment, args: argparse.Namespace, runs: Path) -> dict[str, Any]:
    """Train and evaluate one experiment (one thread each), unless its scores exist.

    A run stopped after its first evaluation is continued with `lsllama resume` (logged to
    NAME.resume-STEPS.log), not started again; its training time is the stopped run's, as
    its pipelines record it, plus the continuation's."""
    scores_path = runs / f"{experiment.name}.scores.json"
    if scores_path.is_file():
        result = json.loads(scores_path.read_text())
        if experiment.tuned and "tuned" not in result and "error" not in result:
            tune_one(experiment, args, runs, result)
            scores_path.write_text(json.dumps(result, indent=2))
        return result
    env = thread_env(args)
    name, stopped = experiment.name, stopped_run(runs / experiment.name)
    commands = [experiment.train_command(args, runs)]
    result: dict[str, Any] = {"threads": args.threads}
    if stopped is None:
        train_seconds = run_logged(commands[0], runs / f"{name}.log", env)
    else:
        result["resumed_at_step"] = stopped.progress.steps
        more: float | None = 0.0  # none if trained to the end but stopped before scoring
        if not stopped.finished:
            commands.append(experiment.resume_command(args, runs))
            log_path = runs / f"{name}.resume-{stopped.progress.steps}.log"
            more = run_logged(commands[-1], log_path, env)
        train_seconds = None if more is None else stopped.progress.seconds + more
    if train_seconds is None:
        return {"error": f"training failed: see the logs of {runs / name}"}
    commands.append(experiment.evaluate_command(args, runs))
    eval_seconds = run_logged(commands[-1], runs / f"{name}.eval.log", env)
    if eval_seconds is None:
        return {"error": f"evaluation failed: see {runs / name}.eval.log"}
    scores = json.loads((runs / f"{name}.eval.json").read_text())
    result.update(scores=scores, train_seconds=train_seconds, eval_seconds=eval_seconds,
                  commands=commands)  # fmt: skip
    if experiment.tuned:
        tune_one(experiment, args, runs, result)
    scores_path.write_text(json.dumps(result, indent=2))
    return result


def tune_one(
    experiment: Experiment, args: argparse.Namespace, runs: Path, result: dict[str, Any]
) -> None:
    """Choose the model's outside_penalty on dev, then score the test split once with it:
    `result["tuned"]` (left out, with the failing log named, if a command fails)."""
    env = thread_env(args)
    name, commands = experiment.name, [experiment.tune_command(args, runs)]
    if run_logged(commands[0], runs / f"{name}.tune.log", env) is None:
        return
    penalty = json.loads((runs / f"{name}.tune.json").read_text())["best"]["outside_penalty"]
    commands.append(experiment.evaluate_command(args, runs, outside_penalty=penalty))
    if run_logged(commands[1], runs / f"{name}.eval-tuned.log", env) is None:
        return
    scores = json.loads((runs / f"{name}.eval-tuned.json").read_text())
    result["tuned"] = {"outside_penalty": penalty, "scores": scores, "commands": commands}


def thread_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of a run's commands: torch limited to --threads threads."""
    threads = str(args.threads)
    return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def run_logged(command: list[str], log_path: Path, env: dict[str, str]) -> float | None:
    """Run ``command`` with its output in ``log_path``: its seconds, or None if it failed."""
    log(f"{log_path.name}: {' '.join(command[1:5])} ...")
    start = time.perf_counter()
    with open(log_path, "w") as out:
        done = subprocess.run(command, cwd=REPO_DIR, env=env, stdout=out, stderr=out)
    if done.returncode != 0:
        log(f"failed: see {log_path}")
        return None
    return time.perf_counter() - start


def stopped_run(run_dir: Path) -> RunState | None:
    """The saved state of a run that did not write its scores, if it saved one."""
    try:
        return find_state(run_dir)
    except ResumeError:
        return None


def dev_curve(runs: Path, name: str) -> list[tuple[int, float]]:
    """(step, dev score in %) from the training logs, a continuation's joined on
    (`accuracy.read_rows`): ENTS_F for NER, CATS_MICRO_F otherwise."""
    log_path = runs / f"{name}.log"
    if not log_path.is_file():
        return []
    _, rows = accuracy.read_rows(log_path)
    column = next((c for c in ("ENTS_F", "CATS_MICRO_F") if rows and c in rows[0]), None)
    return [(int(row["#"]), row[column]) for row in rows] if column else []


def tables(
    experiments: list[Experiment], results: dict[str, dict], args: argparse.Namespace
) -> str:
    """The Markdown of the tables: NER, its layer ablation and recipe sweep, classification and
    the pooling ablation."""
    ner, ner_ablation, sweep, textcat = [], [], [], []
    for e in experiments:
        result = results.get(e.name) or {}
        s = result.get("scores", {})
        curve = " / ".join(f"{v:.1f}" for _, v in dev_curve(args.runs, e.name)) or "–"
        train = f"{result['train_seconds'] / 60:.1f}" if "train_seconds" in result else "–"
        mask = "bidirectional" if e.bidirectional else "causal"
        if e.name == RECIPE_AT_ABLATION_BUDGET:
            sweep.insert(0, ["(the recipe)", "", _pct(s, "ents_f"), curve, train])
        if e.name.startswith("conll2003-sweep-"):
            ((setting, value),) = e.overrides.items()
            sweep.append([setting, value, _pct(s, "ents_f"), curve, train])
        elif e.config == "ner" and e.split == "dev":
            layers = e.overrides
            ner_ablation.append([layers["components.llm.model.unmasked_layers"],
                                 layers["components.llm.model.lora.layers"],
                                 _pct(s, "ents_f"), curve, train])  # fmt: skip
        elif e.config == "ner":
            tuned = result.get("tuned", {})
            ner.append([e.corpus, mask, e.seed, e.split, _pct(s, "ents_p"), _pct(s, "ents_r"),
                        _pct(s, "ents_f"), tuned.get("outside_penalty"),
                        _pct(tuned.get("scores", {}), "ents_f"), curve, train])  # fmt: skip
        else:
            macro_f = _pct(s, "cats_macro_f" if "cats_macro_f" in s else "macro_f1")
            textcat.append([e.corpus, mask, e.pooling, e.split, _accuracy(s), macro_f, curve,
                            train])  # fmt: skip
    budget = (
        f"Base model `{args.base_model}`, batches of 8. NER: configs/ner.cfg's recipe "
        f"(LoRA 12/32/0.1), AdamW {args.ner_learn_rate} with 5 % warm-up and linear decay over "
        f"{args.epochs:g} epochs, model-best on dev scored every quarter epoch; the ablation "
        f"over {args.ablation_epochs:g} epochs. Classification: configs/textcat.cfg's recipe, "
        f"AdamW {args.learn_rate} with 5 % warm-up and linear decay over {args.textcat_epochs:g} "
        f"epoch(s) (model-last), dev scored every quarter epoch on the first {args.dev_limit} "
        f"dev texts. {args.threads} "
        "thread(s) per run. Scores in %; train in minutes."
    )
    ablation = _ablation(experiments, results)
    return "\n".join([
        "## Results of `benchmarks/experiments.py`", "", budget, "", "### NER (seqeval)", "",
        markdown_table(["corpus", "encoder", "seed", "split", "P", "R", "F1",
                        "O penalty (dev)", "F1 at it", "dev F1 by eval", "train"], ner),
        "", "### NER ablation (CoNLL-2003 dev F1)", "",
        markdown_table(["unmasked layers", "adapter layers", "dev F1", "dev F1 by eval",
                        "train"], ner_ablation),
        "", "### NER recipe sweep (CoNLL-2003 dev F1, one setting changed)", "",
        markdown_table(["setting", "value", "dev F1", "dev F1 by eval", "train"], sweep),
        "", "### Text classification", "",
        markdown_table(["corpus", "encoder", "pooling", "split", "accuracy", "macro-F1",
                        "dev accuracy by eval", "train"], textcat),
        "", "### Pooling ablation (accuracy)", "", ablation,
    ])  # fmt: skip


def _ablation(experiments: list[Experiment], results: dict[str, dict]) -> str:
    rows = []
    for corpus in ABLATION_CORPORA:
        for mask in ("causal", "bidir"):
            row: list[Any] = [corpus, "bidirectional" if mask == "bidir" else "causal"]
            for pooling in POOLINGS:
                scores = (results.get(f"{corpus}-{mask}-{pooling}") or {}).get("scores", {})
                row.append(_accuracy(scores))
            rows.append(row)
    return markdown_table(["corpus", "encoder", *POOLINGS], rows)


def _accuracy(scores: dict[str, Any]) -> float | None:
    """Single-label accuracy: spaCy's cats_micro_f (older results: "accuracy")."""
    return _pct(scores, "cats_micro_f" if "cats_micro_f" in scores else "accuracy")


def _pct(scores: dict[str, Any], key: str) -> float | None:
    value = scores.get(key)
    return None if value is None else 100.0 * float(value)


def select(experiments: list[Experiment], only: list[str]) -> list[Experiment]:
    if not only:
        return experiments
    chosen = [e for e in experiments if any(re.search(p, e.name) for p in only)]
    if not chosen:
        raise SystemExit(f"--only {only} matches none of: {', '.join(e.name for e in experiments)}")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-model", type=Path, default=Path("models/smollm2-135m"))
    p.add_argument("--runs", type=Path, default=Path("training/experiments"))
    p.add_argument("--only", action="append", default=[], help="regex on run names")
    p.add_argument("--epochs", type=float, default=3.0, help="NER schedule length")
    p.add_argument("--ablation-epochs", type=float, default=0.5, help="NER ablation budget")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="CoNLL-2003 seeds")
    p.add_argument("--ner-learn-rate", type=float, default=3e-4)
    p.add_argument("--ner-dev-limit", type=int, default=0, help="NER dev sentences; 0 = all")
    p.add_argument("--textcat-epochs", type=float, default=1.0, help="classification schedule")
    p.add_argument("--dev-limit", type=int, default=200)
    p.add_argument("--learn-rate", type=float, default=3e-4)
    p.add_argument("--jobs", type=int, default=2, help="runs side by side")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--gpu-id", type=int, default=-1, help="GPU for training and scoring")
    p.add_argument(
        "--eval-dtype",
        default="float32",
        # lsllama evaluate --dtype's values, checked here so a typo fails before training
        choices=("auto", "float32", "bfloat16", "float16"),
        help="encoder dtype when scoring: as trained",
    )
    p.add_argument("--out", type=Path, default=RESULTS_DIR)
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    args.runs = args.runs.resolve()
    experiments = select(grid(args.seeds, args.ablation_epochs), args.only)
    if args.dry_run:
        for e in experiments:
            for command in (e.train_command(args, args.runs), e.evaluate_command(args, args.runs)):
                print(shlex.join(["python", *command[1:]]))
        return {}
    for corpus in {e.corpus for e in experiments}:
        if not (REPO_DIR / "corpus" / corpus / "train.spacy").is_file():
            raise SystemExit(f"corpus/{corpus}/train.spacy not found: run `lsllama convert` first")
    args.runs.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        done = pool.map(lambda e: run_one(e, args, args.runs), experiments)
        results = dict(zip((e.name for e in experiments), done))
    data = {"settings": {k: str(v) for k, v in vars(args).items()}, "runs": results}
    write_results(args.out, "experiments", data, tables(experiments, results, args))
    pair = {e.name: args.runs / e.name for e in experiments if e.name.startswith("conll2003-")
            and e.split == "test" and e.seed == args.seeds[0]}  # fmt: skip
    if len(pair) == 2:
        accuracy.run(pair, {}, args.out)
    return data


if __name__ == "__main__":
    main()
