"""Fixtures for the corpus reader tests."""

import pytest
import spacy


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")
