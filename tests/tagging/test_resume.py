"""The run header: what a resume compares, and the model fingerprint."""

from spacy_lsllama.tagging.resume import compare_settings, model_fingerprint


def test_differences_name_each_setting_with_both_values():
    recorded = {"--batch-size": 64, "model": "a", "same": 1}
    current = {"--batch-size": 8, "model": "b", "same": 1}
    assert compare_settings(recorded, current) == [
        "--batch-size was 64, now 8",
        'model was "a", now "b"',
    ]


def test_fingerprint_changes_with_any_file_of_the_pipeline(tmp_path):
    (tmp_path / "ner").mkdir()
    (tmp_path / "ner" / "cfg").write_text('{"labels": ["PER"]}')
    (tmp_path / "meta.json").write_text("{}")
    before = model_fingerprint(str(tmp_path))
    assert model_fingerprint(str(tmp_path)) == before
    (tmp_path / "ner" / "cfg").write_text('{"labels": ["LOC"]}')
    assert model_fingerprint(str(tmp_path)) != before
