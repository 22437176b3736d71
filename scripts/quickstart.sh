#!/usr/bin/env bash
# One command for a newcomer: install spacy-lsllama with its shipped pipeline en_lsllama_ner
# into .venv, tag corpus/sample.jsonl, and score the pipeline on the CoNLL-2003 test set
# against the score it publishes (the `quickstart` workflow of project.yml). About 4 minutes
# on 2 cores, the install included (docs/results.md). Training your own pipeline is the
# `demo` workflow: python -m spacy project run demo . --vars.data_dir ../shared/datasets
#
#   bash scripts/quickstart.sh
#
# Environment:
#   LSLLAMA_DATA_DIR  folder holding conll2003/, relative to the repository root
#                     (default: ../shared/datasets; "assets" after `python -m spacy project assets`)
#   PYTHON, TORCH_INDEX_URL: as for scripts/install.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
data_dir="${LSLLAMA_DATA_DIR:-../shared/datasets}"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

for file in conll2003/eng.{train,testa,testb} wnut17/{wnut17train.conll,emerging.dev.conll,emerging.test.annotated}; do
    [[ -f "$data_dir/$file" ]] || fail "$data_dir/$file not found. Set LSLLAMA_DATA_DIR to the \
folder holding conll2003/ and wnut17/, or download them with \
'python -m spacy project assets' and set LSLLAMA_DATA_DIR=assets."
done

step "Installing spacy-lsllama and en_lsllama_ner"
bash scripts/install.sh
python="${VIRTUAL_ENV:-$PWD/.venv}/bin/python"

step "Tagging corpus/sample.jsonl and scoring en_lsllama_ner on CoNLL-2003 (data from $data_dir)"
export PATH="$(dirname "$python"):$PATH"  # the workflow calls the lsllama command
"$python" -m spacy project run quickstart . --vars.data_dir "$data_dir"

step "Done"
echo "Tagged sample:      training/sample.shipped.jsonl"
echo "Test-set scores:    metrics/en_lsllama_ner.json"
echo "Tag your own text:  lsllama tag docs.jsonl --output tagged.jsonl"
