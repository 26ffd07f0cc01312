#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: npm dependencies (from the lockfile) when
# they are missing or stale, and nats-server (see ensure-nats.sh). Safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=""
[ "${1:-}" = "--quiet" ] && quiet="--quiet"

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "Node.js >= 20 is required (found $(node --version))." >&2
  exit 1
fi
if [ ! -d node_modules/@nats-io/jetstream ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm dependencies (npm ci)..."
  npm ci --no-audit --no-fund --loglevel=error
fi
bash deploy/ensure-nats.sh $quiet
