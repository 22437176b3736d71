"""Pure PyTorch, transformers and peft: the encoder and its parts, with no spaCy or thinc."""
