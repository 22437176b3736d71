"""ConversionError: a location that survives pickling (multiprocessing)."""

import pickle

from spacy_lsllama.corpora import ConversionError


def test_conversion_error_survives_pickling():
    err = ConversionError("eng.train", 1234, "expected 4 columns, got 2")
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == "eng.train:1234: expected 4 columns, got 2"
    assert (copy.path, copy.line, copy.field, copy.message) == (
        "eng.train",
        1234,
        None,
        "expected 4 columns, got 2",
    )
