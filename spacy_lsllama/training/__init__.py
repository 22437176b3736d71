"""Training across stops: progress recorded in every saved pipeline, and the continuation of
a stopped `spacy train` run from its last save (``lsllama resume``)."""
