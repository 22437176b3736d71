#!/usr/bin/env bash
# A GPU check for a machine without internet whose python3 has torch and cupy but no spaCy.
#
#   benchmarks/gpu_check.sh prepare [--corpus DIR]   # here, with internet: wheels and data
#   benchmarks/gpu_check.sh [--device gpu|cpu] [--steps N] [--no-install]   # there
#
# prepare: downloads this project's pinned wheels for CPython 3.12 on x86-64 (the GPU
# machine's python3) into wheelhouse/ (git-ignored), strips their shared libraries, writes
# the data subsets into wheelhouse/data/ and prints the size. The check: installs the wheels
# and this checkout into /tmp/site, builds a random Llama, trains configs/ner.cfg for N steps
# (200) on the device in bfloat16, tags 1,000 lines with `lsllama tag` on the device and on
# the CPU, and compares the entities. One PASS/FAIL line per check; exit 1 if any failed.
# Results go to $OUT when it is set, else to a new folder under /tmp. See benchmarks/README.md.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHEELS=${GPU_CHECK_WHEELS:-$ROOT/wheelhouse}
HELPER=$ROOT/benchmarks/gpu_check.py
# Missing on the GPU machine (its python3 has torch, numpy, peft, typer, rich, click,
# safetensors, scikit-learn, ...), plus the transformers stack this project pins
# (spacy-transformers 1.4 needs transformers < 4.53.3; the machine has 5.x), at the versions
# installed here. setuptools builds this checkout there.
PACKAGES="spacy thinc spacy-transformers spacy-alignments spacy-legacy spacy-loggers blis
cymem murmurhash preshed srsly catalogue wasabi weasel confection cloudpathlib smart-open
pydantic pydantic-core annotated-types typing-inspection transformers tokenizers
huggingface-hub peft setuptools"
PURE_PYTHON="seqeval"  # sdist only on PyPI: built into a wheel here
PLATFORMS="manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64
manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_12_x86_64 manylinux_2_5_x86_64
manylinux1_x86_64"
TRAVEL_LIMIT=$((64 << 20))

die() { echo "error: $*" >&2; exit 2; }

prepare() {
    local corpus=$ROOT/corpus/conll2003
    while [ $# -gt 0 ]; do
        case $1 in
            --corpus) corpus=${2:?--corpus needs a folder}; shift 2 ;;
            *) die "prepare: unknown option $1" ;;
        esac
    done
    for split in train dev test; do
        [ -f "$corpus/$split.spacy" ] || die "$corpus/$split.spacy not found (--corpus DIR)"
    done
    local python=${PYTHON:-python}
    local specs="" name version platforms=""
    for name in $PACKAGES $PURE_PYTHON; do
        version=$("$python" -c "import importlib.metadata as m; print(m.version('$name'))") \
            || die "$name is not installed here: install the project first (scripts/install.sh)"
        specs="$specs $name==$version"
    done
    for name in $PLATFORMS; do platforms="$platforms --platform $name"; done
    mkdir -p "$WHEELS"
    rm -f "$WHEELS"/*.whl  # one version of each: two stop the install there
    echo "downloading into $WHEELS:$specs"
    # shellcheck disable=SC2086
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp $platforms -d "$WHEELS" ${specs% seqeval==*} \
        || die "pip download failed"
    "$python" -m pip wheel -q --no-deps -w "$WHEELS" "${specs##* }" || die "pip wheel failed"
    "$python" "$HELPER" slim "$WHEELS"/*.whl || die "slimming the wheels failed"
    "$python" "$HELPER" data "$corpus" "$WHEELS/data" || die "writing the data failed"
    local wheels tree
    wheels=$(du -sb "$WHEELS" | cut -f1)
    tree=$(cd "$ROOT" && git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
    echo "wheelhouse: $(find "$WHEELS" -name '*.whl' | wc -l) wheels and data," \
        "$((wheels / 1000000)) MB; with the tracked files $(((wheels + tree) / 1000000)) MB" \
        "of the $((TRAVEL_LIMIT / 1000000)) MB a device run may carry"
    [ $((wheels + tree)) -le $TRAVEL_LIMIT ] || die "too large to travel"
}

FAILED=0
RESULTS=""
result() {  # result PASS|FAIL NAME DETAIL
    echo "$1 $2${3:+: $3}" | tee -a "$OUT_DIR/check.log"
    [ "$1" = PASS ] || FAILED=1
    RESULTS="$RESULTS$1 $2\n"
}

step() {  # step NAME LOG COMMAND...: run, log, PASS/FAIL with the time taken
    local name=$1 log=$2 start=$SECONDS
    shift 2
    if "$@" >>"$log" 2>&1; then
        result PASS "$name" "$((SECONDS - start)) s"
    else
        result FAIL "$name" "exit $? after $((SECONDS - start)) s; see $(basename "$log")"
        tail -n 15 "$log"
        return 1
    fi
}

check() {
    local device=gpu steps=200 install=1
    while [ $# -gt 0 ]; do
        case $1 in
            --device) device=${2:?}; shift 2 ;;
            --steps) steps=${2:?}; shift 2 ;;
            --no-install) install=0; shift ;;
            *) die "unknown option $1 (prepare | --device gpu|cpu --steps N --no-install)" ;;
        esac
    done
    case $device in gpu) gpu=0 ;; cpu) gpu=-1; install=0 ;; *) die "--device gpu or cpu" ;; esac
    [ -f "$WHEELS/data/lines.jsonl" ] || die "no $WHEELS/data: run '$0 prepare' first"
    OUT_DIR=${OUT:-$(mktemp -d /tmp/lsllama-gpu-check.XXXXXX)}
    mkdir -p "$OUT_DIR"
    local work python=${PYTHON:-python3}
    work=$(mktemp -d /tmp/lsllama-gpu-work.XXXXXX)
    echo "gpu_check: device $device, $steps steps, results in $OUT_DIR" | tee "$OUT_DIR/check.log"

    if [ "$install" = 1 ]; then
        step install "$work/install.log" bash -c "
            $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
                --upgrade --target /tmp/site '$WHEELS'/*.whl &&
            PYTHONPATH=/tmp/site $python -m pip install -q --no-index --no-deps \
                --no-build-isolation --no-compile --no-cache-dir --upgrade --target /tmp/site \
                '$ROOT'" || return
        export PYTHONPATH=/tmp/site
    fi
    export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
    "$python" - >"$OUT_DIR/versions.json" 2>>"$work/install.log" <<'EOF' || {
import importlib.metadata as m, json, platform, torch
names = ["spacy-lsllama", "spacy", "thinc", "spacy-transformers", "transformers", "tokenizers",
         "peft", "torch", "numpy", "cupy-cuda13x"]
versions = {}
for name in names:
    try:
        versions[name] = m.version(name)
    except m.PackageNotFoundError:
        versions[name] = None
versions["python"] = platform.python_version()
versions["cuda_device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
print(json.dumps(versions, indent=1))
EOF
        result FAIL imports "see install.log"; cp "$work/install.log" "$OUT_DIR/"; return; }
    result PASS imports "$(tr -d '\n ' <"$OUT_DIR/versions.json")"
    if [ "$gpu" -ge 0 ]; then
        step "spaCy on GPU $gpu (cupy, thinc)" "$work/install.log" "$python" -c \
            "import spacy; spacy.require_gpu($gpu); import torch; assert torch.cuda.is_available()" \
            || { cp "$work/install.log" "$OUT_DIR/"; return; }
    fi

    local data=$WHEELS/data lines=$WHEELS/data/lines.jsonl model=$work/train/model-last
    step "random Llama" "$work/model.log" "$python" "$HELPER" model "$data" "$work/base" || return
    local warmup=$((steps / 10 > 0 ? steps / 10 : 1))
    step "train configs/ner.cfg, $steps steps, bfloat16" "$OUT_DIR/train.log" \
        "$python" -m spacy train "$ROOT/configs/ner.cfg" --output "$work/train" --gpu-id "$gpu" \
        --paths.base_model "$work/base" --paths.train "$data/train.spacy" \
        --paths.dev "$data/dev.spacy" --components.llm.model.dtype bfloat16 \
        --training.optimizer.learn_rate.total_steps "$steps" \
        --training.optimizer.learn_rate.warmup_steps "$warmup" \
        --training.optimizer.learn_rate.initial_rate 0.002 \
        --training.eval_frequency "$(((steps + 1) / 2))" || return
    [ "$gpu" -lt 0 ] || grep -q "Using GPU: $gpu" "$OUT_DIR/train.log" \
        && result PASS "training ran on the device" \
        || result FAIL "training ran on the device" "no 'Using GPU: $gpu' in train.log"
    step "float32 copy" "$work/model.log" "$python" "$HELPER" float32 "$model" "$work/f32" || return

    local tag=("$python" -m spacy_lsllama.cli tag "$lines" --batch-size 64)
    step "tag on the device, bfloat16" "$work/tag.log" \
        "${tag[@]}" -m "$model" -o "$OUT_DIR/device_bf16.jsonl" --gpu-id "$gpu"
    step "tag on the device again, bfloat16" "$work/tag.log" \
        "${tag[@]}" -m "$model" -o "$work/device_bf16_again.jsonl" --gpu-id "$gpu"
    step "tag on the CPU, bfloat16" "$work/tag.log" \
        "${tag[@]}" -m "$model" -o "$OUT_DIR/cpu_bf16.jsonl"
    step "tag on the device, float32" "$work/tag.log" \
        "${tag[@]}" -m "$work/f32" -o "$work/device_f32.jsonl" --gpu-id "$gpu"
    step "tag on the CPU, float32" "$work/tag.log" \
        "${tag[@]}" -m "$work/f32" -o "$work/cpu_f32.jsonl"
    cp "$work/tag.log" "$OUT_DIR/"
    cp "$OUT_DIR/device_bf16.jsonl.run.json" "$OUT_DIR/device_bf16.run.json" 2>/dev/null
    rm -f "$OUT_DIR"/*.jsonl.run.json "$OUT_DIR"/*.errors.jsonl

    if cmp -s "$OUT_DIR/device_bf16.jsonl" "$work/device_bf16_again.jsonl"; then
        result PASS "the same input gives the same bytes on the device"
    else
        result FAIL "the same input gives the same bytes on the device" \
            "$(cmp "$OUT_DIR/device_bf16.jsonl" "$work/device_bf16_again.jsonl" 2>&1 | head -1)"
    fi
    # float32 on both sides: only the order of sums differs (TF32 is off in torch by default).
    compare "device vs CPU, float32" "$work/device_f32.jsonl" "$work/cpu_f32.jsonl" \
        --min-records 0.99 --min-f1 0.99 --min-entities 1
    # bfloat16 kernels differ between the device and the CPU: entities may flip near a tie.
    compare "device vs CPU, bfloat16" "$OUT_DIR/device_bf16.jsonl" "$OUT_DIR/cpu_bf16.jsonl" \
        --min-records 0.9 --min-f1 0.9 --min-entities 1
    "$python" - "$work" "$OUT_DIR/results.json" <<'EOF'
import json, sys
from pathlib import Path
work, out = Path(sys.argv[1]), Path(sys.argv[2])
results = {}
for path in sorted(work.glob("compare-*.json")):
    results.update(json.loads(path.read_text()))
meta = json.loads((work / "train" / "model-last" / "meta.json").read_text())
results["dev ents_f after training"] = meta.get("performance", {}).get("ents_f")
out.write_text(json.dumps(results, indent=1) + "\n")
EOF
    rm -rf "$work"
}

compare() {  # compare NAME A B OPTIONS...
    local name=$1 a=$2 b=$3 numbers
    shift 3
    numbers=$work/compare-$(echo "$name" | tr -c 'a-zA-Z0-9' '_').json
    if [ ! -s "$a" ] || [ ! -s "$b" ]; then
        result FAIL "$name" "an output is missing"
        return
    fi
    line=$("$python" "$HELPER" compare "$name" "$a" "$b" --json "$numbers" "$@")
    case $line in
        PASS*|FAIL*) result "${line%% *}" "${line#* }" ;;
        *) result FAIL "$name" "the comparison failed" ;;
    esac
}

case ${1:-} in
    prepare) shift; prepare "$@" ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' ;;
    *)
        check "$@"
        echo "gpu_check: $(printf "$RESULTS" | grep -c '^PASS') passed, $(printf "$RESULTS" |
            grep -c '^FAIL') failed; results in $OUT_DIR"
        exit $FAILED ;;
esac
