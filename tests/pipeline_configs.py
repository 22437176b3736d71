"""Small pipeline configs shared by tests (no tests in here)."""

NER_CONFIG = """
[nlp]
lang = "en"
pipeline = ["llm", "ner"]

[components]

[components.llm]
factory = "lsllama_transformer"

[components.llm.model]
@architectures = "spacy-lsllama.LlamaTransformer.v1"
name = "{name}"

[components.llm.model.lora]
@misc = "spacy-lsllama.LoRA.v1"
r = 4

[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
hidden_width = 32
maxout_pieces = 2
use_upper = true

[components.ner.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0

[components.ner.model.tok2vec.pooling]
@layers = "reduce_mean.v1"
"""
