#!/bin/sh
# Makes the shipped weights (weights/pytorch.pt) from scratch: the tiny world's training data
# and benchmark suites through pop, then the seeded recipe (pretrain.py). A few minutes on two
# idle cores. POP_PYTHON picks the interpreter (default Debian's /usr/bin/python3, which has torch).
set -eu
cd "$(dirname "$0")/../../.."
py="${POP_PYTHON:-/usr/bin/python3}"
data="${1:-${TMPDIR:-/tmp}/torch-peer-data}"
npx tsx deploy/cli/cli.ts tiny-data --out "$data" --items 24000 --seed 1
npx tsx deploy/cli/cli.ts tiny-bench --out "$data/bench"
"$py" actors/process-peer/torch_peer pretrain --data "$data" --bench "$data/bench/bench.jsonl" --out actors/process-peer/torch_peer/weights/pytorch.pt
