"""How far a `spacy train` run got, recorded in the meta of every pipeline it saves.

`spacy train` saves ``model-last`` at every evaluation and when it stops (for an error or
Ctrl-C too). With this callback as ``[training.before_update]``, that save also says how many
updates the weights have had and how long they took, which is what a continuation needs
(``lsllama resume``). The callback changes nothing else.
"""

import time
from collections.abc import Callable
from typing import Any

from spacy.language import Language
from spacy.util import registry

META_KEY = "lsllama_training"

ProgressCallback = Callable[[Language, dict[str, Any]], None]


@registry.callbacks("spacy-lsllama.training_progress.v1")
def training_progress_v1(start_step: int = 0, start_seconds: float = 0.0) -> ProgressCallback:
    """Before each update, store in ``nlp.meta`` the updates the next save will hold.

    start_step, start_seconds: updates and training seconds before this run began (set by
    ``lsllama resume``; 0 for a run from scratch).
    """
    started = time.perf_counter()

    def record(nlp: Language, info: dict[str, Any]) -> None:
        # A save follows the update of this step: it holds step + 1 updates of this run.
        nlp.meta[META_KEY] = {
            "steps": start_step + info["step"] + 1,
            "seconds": round(start_seconds + time.perf_counter() - started, 1),
        }

    return record
