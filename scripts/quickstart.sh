#!/usr/bin/env bash
# One command for a newcomer: install spacy-lsllama into .venv and run the `demo` workflow
# (prepare SmolLM2-135M, convert CoNLL-2003, train briefly on the CPU, evaluate on the
# CoNLL-2003 test set, tag corpus/sample.jsonl). It took 9 min 53 s on a 2-core host, the
# install included (docs/results.md).
#
#   bash scripts/quickstart.sh
#
# Environment:
#   LSLLAMA_DATA_DIR  folder holding conll2003/ and wnut17/, relative to the repository root
#                     (default: ../shared/datasets; "assets" after `python -m spacy project assets`)
#   PYTHON            interpreter that creates the venv (default: python3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
data_dir="${LSLLAMA_DATA_DIR:-../shared/datasets}"
python="${PYTHON:-python3}"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

for file in conll2003/eng.{train,testa,testb} wnut17/{wnut17train.conll,emerging.dev.conll,emerging.test.annotated}; do
    [[ -f "$data_dir/$file" ]] || fail "$data_dir/$file not found. Set LSLLAMA_DATA_DIR to the \
folder holding conll2003/ and wnut17/, or download them with \
'python -m spacy project assets' and set LSLLAMA_DATA_DIR=assets."
done

if [[ ! -x .venv/bin/python ]]; then
    step "Creating the virtual environment .venv"
    command -v "$python" >/dev/null || fail "$python not found: install Python 3.10-3.12 or set PYTHON."
    "$python" -m venv .venv
fi
venv_python=.venv/bin/python
"$venv_python" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' \
    || fail ".venv has Python $("$venv_python" -V 2>&1); spacy-lsllama needs 3.10-3.12."

step "Installing torch (CPU) and spacy-lsllama into .venv"
"$venv_python" -m pip install --quiet torch==2.13.0
"$venv_python" -m pip install --quiet -e .

step "Running the demo workflow (data from $data_dir)"
export PATH="$PWD/.venv/bin:$PATH"  # the workflow calls the lsllama command
"$venv_python" -m spacy project run demo . --vars.data_dir "$data_dir"

step "Done"
echo "Test-set scores:    metrics/ner-demo.json"
echo "Demo model:         training/ner-demo/model-best"
echo "Tagged sample:      training/sample.tagged.jsonl"
echo "Tag your own text:  .venv/bin/lsllama tag docs.jsonl --model training/ner-demo/model-best"
