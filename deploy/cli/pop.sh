#!/usr/bin/env bash
# `pop` as an installed command (package.json "bin"): the CLI run by node with the tsx loader
# from this repository, so it works from any directory.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)"
# The coordinator's node flags (deploy/cli/node-args.ts says why).
flags=()
if [ "${1:-}" = coordinator ]; then mapfile -t flags < <(grep -v '^\s*$' "$root/deploy/cli/coordinator.node-flags"); fi
exec node ${flags[@]+"${flags[@]}"} --import "$root/node_modules/tsx/dist/esm/index.mjs" "$root/deploy/cli/cli.ts" "$@"
