#!/usr/bin/env bash
# Makes sure a nats-server (>= 2.9) is available: uses the one on PATH (or $NATS_SERVER_BIN),
# installs Debian's package when run as root with apt-get, and otherwise says what to install.
set -euo pipefail
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" = 1 ] || echo "$@"; }

if [ -n "${NATS_SERVER_BIN:-}" ] && [ -x "${NATS_SERVER_BIN}" ]; then
  say "nats-server: using ${NATS_SERVER_BIN} ($("${NATS_SERVER_BIN}" --version))"
  exit 0
fi
if command -v nats-server >/dev/null 2>&1; then
  say "nats-server: $(command -v nats-server) ($(nats-server --version))"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "nats-server not found; installing Debian's package (apt-get install nats-server)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq nats-server >/dev/null
  # The package enables a system service; this project starts its own servers on free ports.
  (command -v systemctl >/dev/null && systemctl disable --now nats-server >/dev/null 2>&1) || true
  echo "nats-server: installed $(nats-server --version)"
  exit 0
fi
cat >&2 <<'MSG'
nats-server was not found on PATH, and it can't be installed automatically here (needs root and apt-get).
Install nats-server >= 2.9 and put it on PATH, or set NATS_SERVER_BIN to its path:
  Debian/Ubuntu:  sudo apt-get install nats-server
  otherwise:      see the NATS server releases for your platform
MSG
exit 1
