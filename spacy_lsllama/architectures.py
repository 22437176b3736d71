"""Registered architectures: the configs' interface to spacy-lsllama's models."""

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch
from thinc.api import Model

from .layers import EncoderSettings, LlamaTransformerModel
from .lora import LoraSettings


@registry.architectures("spacy-lsllama.LlamaTransformer.v1")
def build_llama_transformer_v1(
    name: str,
    bidirectional: bool = True,
    lora: LoraSettings | None = None,
    dtype: str = "auto",
    attn_implementation: str = "sdpa",
    gradient_checkpointing: bool = False,
    window: int = 512,
    stride: int = 384,
    embed_base_model: bool = False,
) -> Model[list[Doc], FullTransformerBatch]:
    """A Llama-family decoder as a shared encoder (LS-unLLaMA, or LS-LLaMA when causal).

    name: local Hugging Face directory, `.gguf` file, or hub name (needs a reachable hub).
    bidirectional: remove the causal mask (LS-unLLaMA); padding stays masked either way.
    lora: LoRA settings (`spacy-lsllama.LoRA.v1`); null freezes the whole decoder.
    dtype: "auto" (float32 on CPU, bfloat16 on GPU), "float32", "bfloat16" or "float16".
    attn_implementation: "sdpa" or "eager" (both honour the unmasking).
    gradient_checkpointing: trade compute for memory in training.
    window, stride: documents longer than `window` pieces run as overlapping windows every
        `stride` pieces (window/2 <= stride <= window), stitched so each piece keeps the
        state from the window where it has most context.
    embed_base_model: save the full base weights with the pipeline (self-contained).
    """
    settings = EncoderSettings(
        name=str(name),
        bidirectional=bidirectional,
        lora=lora,
        dtype=dtype,
        attn_implementation=attn_implementation,
        gradient_checkpointing=gradient_checkpointing,
        window=window,
        stride=stride,
        embed_base_model=embed_base_model,
    )
    return LlamaTransformerModel(settings)
