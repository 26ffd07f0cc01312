#!/usr/bin/env bash
# Checks the Python SimPO LoRA trainer (actors/trainers/python/simpo_lora.py) on a GPU host that has
# torch, transformers, peft, tokenizers and pillow, offline, in well under 5 minutes:
#   1. prints the versions and the device (fails without CUDA unless POP_CHECK_ALLOW_CPU=1);
#   2. builds a tiny randomly initialised LLaVA (CLIP vision tower + Llama, word-level tokenizer,
#      chat template) with no downloads, saves it, loads it back as the trainer does, runs a forward;
#   3. iteration 1: a contract work directory with 6 pairs and PNG images, trained from a fresh
#      LoRA for 2 optimizer steps (batch 3, micro-batch 1, bf16 when the GPU has it);
#   4. verifies: metrics.json sane (steps 2, finite numbers, margins moved), adapter files written,
#      lora_B non-zero, no LoRA on the vision side, base + adapter changes the logits;
#   5. iteration 2: starts from iteration 1's adapter (init_adapter), work dir from POP_TRAIN_DIR,
#      micro-batch 2 (padding), float32; verifies the adapter changed from its init;
#   6. iteration 3: an empty pairs file: steps 0 and the init adapter copied unchanged;
#   7. prints a report (versions, device, seconds, losses, margins).
# Any failure exits non-zero with a line saying which step failed; the files are kept for a look.
# Environment: PYTHON (default python3), POP_CHECK_TIMEOUT (whole check, default 290 s),
# POP_CHECK_KEEP=1 (keep the temporary directory), POP_CHECK_ALLOW_CPU=1.
set -euo pipefail

limit="${POP_CHECK_TIMEOUT:-290}"
if [ -z "${POP_CHECK_INNER:-}" ]; then
  # Run the check itself under a hard time limit, and say so when that is what ended it.
  rc=0
  POP_CHECK_INNER=1 timeout -k 10 "$limit" bash "$0" "$@" || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "check.sh: FAILED: the check took longer than ${limit} s and was stopped" >&2
  fi
  exit "$rc"
fi

cd "$(dirname "$0")/../../.."
PY="${PYTHON:-python3}"
TINY=deploy/ops/gpu/tiny_llava.py
TRAINER=actors/trainers/python/simpo_lora.py
# Nothing may be fetched: the host has no internet, and the check must not depend on a cache.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONDONTWRITEBYTECODE=1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pop-gpu-check.XXXXXX")
export HF_HOME="$tmp/hf-home"
current="setting up"
started=$SECONDS

on_error() {
  echo "check.sh: FAILED during: $current (exit $1); files kept in $tmp" >&2
}
trap 'on_error $?' ERR

step() {
  current="$1"
  echo
  echo "== $1 ($((SECONDS - started)) s)"
}

step "1. versions and device"
versions=$("$PY" "$TINY" versions)
echo "$versions"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

step "2. build the tiny LLaVA"
"$PY" "$TINY" build --out "$tmp/base"

step "3. iteration 1: fresh LoRA, 6 pairs, 2 optimizer steps"
"$PY" "$TINY" workdir --dir "$tmp/iter-1" --pairs 6 --batch-size 3 --lr 1e-2 --sft-weight 1 --iteration 1
"$PY" "$TRAINER" --base-model "$tmp/base" --work-dir "$tmp/iter-1" --lora-rank 8 --lora-alpha 16 --micro-batch 1 --max-length 256

step "4. verify iteration 1"
"$PY" "$TINY" verify --base "$tmp/base" --work "$tmp/iter-1" --steps 2

step "5. iteration 2: continue iteration 1's adapter (POP_TRAIN_DIR, micro-batch 2, float32)"
"$PY" "$TINY" workdir --dir "$tmp/iter-2" --pairs 6 --batch-size 3 --lr 1e-2 --sft-weight 0 --iteration 2 --init-adapter "$tmp/iter-1/adapter"
# batch 3 with micro-batch 2 rounds up to 2 x 2 = 4 pairs per step: steps of 4 and 2 pairs.
POP_TRAIN_DIR="$tmp/iter-2" "$PY" "$TRAINER" --base-model "$tmp/base" --micro-batch 2 --no-bf16 --max-length 256
"$PY" "$TINY" verify --base "$tmp/base" --work "$tmp/iter-2" --steps 2 --init "$tmp/iter-1/adapter"

step "6. iteration 3: no pairs"
"$PY" "$TINY" workdir --dir "$tmp/iter-3" --pairs 0 --iteration 3 --init-adapter "$tmp/iter-2/adapter"
"$PY" "$TRAINER" --base-model "$tmp/base" --work-dir "$tmp/iter-3"
"$PY" "$TINY" same --work "$tmp/iter-3" --init "$tmp/iter-2/adapter"

step "7. report"
echo "$versions"
"$PY" "$TINY" report "$tmp/iter-1" "$tmp/iter-2" "$tmp/iter-3"
trap - ERR
echo
echo "check.sh: OK in $((SECONDS - started)) s"
if [ -n "${POP_CHECK_KEEP:-}" ]; then
  echo "files kept in $tmp"
else
  rm -rf "$tmp"
fi
