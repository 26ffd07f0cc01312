#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: npm dependencies (from the lockfile) when
# they are missing or stale, nats-server (see ensure-nats.sh), and torch for Debian's python3
# (the SimPO parity test runs actors/trainers/python/simpo.py with it). With --tests also Debian's
# chromium, which the browser tests drive headless. Safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/../.."
quiet=""
tests=""
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet="--quiet" ;;
    --tests) tests=1 ;;
    *) echo "setup.sh: unknown option '$arg' (options: --quiet, --tests)" >&2; exit 2 ;;
  esac
done
say() { [ -n "$quiet" ] || echo "$@"; }

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "Node.js >= 20 is required (found $(node --version))." >&2
  exit 1
fi
# The lockfile's digest, not its date, says whether node_modules is current: a merge or checkout
# that brings a changed lockfile can leave it older than the last install.
lock_digest=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules/@nats-io/jetstream ] || [ "$(cat node_modules/.pop-lock-digest 2>/dev/null)" != "$lock_digest" ]; then
  echo "installing npm dependencies from the lockfile (npm ci)..."
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_digest" > node_modules/.pop-lock-digest
fi
bash deploy/ops/ensure-nats.sh $quiet

# torch for the Python trainer's pure-torch part. Debian's python3-torch (CPU) installs for
# /usr/bin/python3 only, not for a pyenv/conda `python3` that may come first on PATH, so the
# interpreter is named explicitly (POP_PYTHON overrides it, as the parity test's does).
# A missing torch is a warning, not a failure: the NATS side and the tiny model never need it.
py="${POP_PYTHON:-/usr/bin/python3}"
torch_version() { "$py" -c 'import torch; print(torch.__version__)' 2>/dev/null; }
if v=$(torch_version); then
  say "torch: $v for $py"
elif [ "$py" = /usr/bin/python3 ] && [ -x "$py" ] && [ "$(id -u)" = 0 ] && [ -r /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
  echo "torch not importable by $py; installing Debian's package (apt-get install python3-torch, a few minutes)..."
  export DEBIAN_FRONTEND=noninteractive
  # Only refresh the package lists when they do not know the package yet (a fresh container).
  if ! apt-cache policy python3-torch 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -qq >/dev/null
  fi
  apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
  v=$(torch_version) || { echo "python3-torch was installed but $py still cannot import torch." >&2; exit 1; }
  echo "torch: installed $v for $py"
else
  cat >&2 <<MSG
warning: $py cannot import torch, and it can't be installed automatically here (needs root, Debian and apt-get).
The Python SimPO trainer's parity test (test/actors/simpo-parity.test.ts) fails until it can:
  Debian/Ubuntu:  sudo apt-get install python3-torch     (CPU torch for /usr/bin/python3)
  otherwise:      install torch for a Python 3 interpreter and set POP_PYTHON to its path
MSG
fi

# Chromium for the browser tests (the dashboard and report.html, driven with playwright-core).
# playwright-core downloads no browser; Debian's package is used. POP_CHROMIUM names another binary.
if [ -n "$tests" ]; then
  if [ -n "${POP_CHROMIUM:-}" ] && [ -x "${POP_CHROMIUM}" ]; then
    say "chromium: $POP_CHROMIUM"
  elif command -v chromium >/dev/null 2>&1; then
    say "chromium: $(command -v chromium)"
  elif [ "$(id -u)" = 0 ] && [ -r /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
    echo "chromium not found; installing Debian's package for the browser tests (apt-get install chromium, under a minute)..."
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      apt-get update -qq >/dev/null
    fi
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
    echo "chromium: installed $(command -v chromium)"
  else
    cat >&2 <<MSG
warning: no chromium, and it can't be installed automatically here (needs root, Debian and apt-get).
The browser tests (test/e2e/demo.test.ts: the dashboard and report.html) fail until it can:
  Debian/Ubuntu:  sudo apt-get install chromium
  otherwise:      install Chromium or Chrome and set POP_CHROMIUM to its path
MSG
  fi
fi
