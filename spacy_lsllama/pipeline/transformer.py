"""The `lsllama_transformer` component: the shared Llama encoder of a pipeline.

It is spacy-transformers' `Transformer` component (listeners, batching, the update protocol
and `doc._.trf_data` all come from there) with one change: the encoder is saved as files,
the LoRA adapter in safetensors plus a fingerprinted reference to the base model, instead of
one msgpack blob holding every weight.
"""

from collections.abc import Callable, Iterable
from pathlib import Path

import srsly
from spacy import util
from spacy.language import Language
from spacy.training import Example
from spacy_transformers.annotation_setters import null_annotation_setter
from spacy_transformers.pipeline_component import Transformer
from thinc.api import Model, get_torch_default_device
from wasabi import msg

from ..layers.shim import read_encoder, write_encoder
from ..layers.transformer_model import encoder_dtype, get_encoder, get_settings, place_encoder
from ..nn.precision import auto_reason, dtype_name
from .compilation import encoder_layers

DEFAULT_CONFIG_STR = """
[model]
@architectures = "spacy-lsllama.LlamaTransformer.v2"
name = "HuggingFaceTB/SmolLM2-135M-Instruct"
unmasked_layers = null
dtype = "auto"
attn_implementation = "sdpa"
gradient_checkpointing = false
window = 512
stride = 384
rows_per_forward = 8
merge_lora = true
embed_base_model = false
compile = false
prefix_cache_mb = 2048
prefix_cache_predict = false

[model.lora]
@misc = "spacy-lsllama.LoRA.v3"
r = 12
alpha = 32
dropout = 0.1
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj"]
layers = "all"
shared_dropout = true
"""
DEFAULT_CONFIG = util.load_config_from_str(DEFAULT_CONFIG_STR)
FACTORY = "lsllama_transformer"


@Language.factory(
    FACTORY,
    assigns=["doc._.trf_data"],
    default_config={
        "model": DEFAULT_CONFIG["model"],
        "set_extra_annotations": {
            "@annotation_setters": "spacy-transformers.null_annotation_setter.v1"
        },
        "max_batch_items": 4096,
    },
)
def make_lsllama_transformer(
    nlp: Language,
    name: str,
    model: Model,
    set_extra_annotations=null_annotation_setter,
    max_batch_items: int = 4096,
) -> "LlamaTransformer":
    """Create the shared Llama encoder; downstream components listen to it."""
    return LlamaTransformer(
        nlp.vocab, model, set_extra_annotations, name=name, max_batch_items=max_batch_items
    )


class LlamaTransformer(Transformer):
    """spacy-transformers' Transformer with file-based, pickle-free encoder serialization."""

    def initialize(
        self, get_examples: Callable[[], Iterable[Example]], *, nlp: Language | None = None
    ) -> None:
        """Load the base model, say which dtype training runs in and why, and record both in
        the pipeline's meta (`lsllama.NAME.training_dtype`, `...training_dtype_reason`),
        which `spacy train` saves."""
        super().initialize(get_examples, nlp=nlp)
        dtype = dtype_name(encoder_dtype(self.model))
        setting = get_settings(self.model).dtype
        if setting == "auto":
            reason = f"dtype = auto: {auto_reason(get_torch_default_device())}"
        else:
            reason = f'dtype = "{setting}" in the config'
        msg.info(f"{self.name}: the encoder trains in {dtype} ({reason})")
        if nlp is not None:
            records = nlp.meta.setdefault("lsllama", {})
            records[f"{self.name}.training_dtype"] = dtype
            records[f"{self.name}.training_dtype_reason"] = reason

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = tuple()) -> None:
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "model": lambda p: write_encoder(get_encoder(self.model), p),
        }
        util.to_disk(path, serialize, exclude)

    def from_disk(
        self, path: str | Path, *, exclude: Iterable[str] = tuple()
    ) -> "LlamaTransformer":
        settings = get_settings(self.model)
        deserialize = {
            "cfg": lambda p: self.cfg.update(srsly.read_json(p)),
            "model": lambda p: place_encoder(self.model, read_encoder(p, settings)),
        }
        util.from_disk(path, deserialize, exclude)
        return self


def encoder_dtypes(nlp: Language) -> list[str]:
    """The dtype each lsllama encoder of a loaded pipeline runs in, in pipeline order
    (e.g. ["bfloat16"]): what `lsllama tag` reports, since `dtype = "auto"` depends on the
    device and the CPU."""
    return [dtype_name(encoder_dtype(layer)) for layer in encoder_layers(nlp)]
