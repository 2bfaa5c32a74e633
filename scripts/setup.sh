#!/usr/bin/env bash
# Install everything the test suite and the benchmarks need (Debian 12, as root).
#
#   scripts/setup.sh            everything
#   scripts/setup.sh --no-apt   only the venv and the npm packages (what `wsio demo` needs)
#
# Idempotent and quick when everything is present:
#   * Debian packages chromium, nginx, redis-server, haproxy (plus node/npm and gcc when
#     missing); apt-get update runs once, only when something has to be installed,
#     and no package service is started.
#   * the virtualenv .venv in the repository root with `pip install -e '.[test,bench]'`,
#     re-run only when pyproject.toml, setup.py or the C speedups changed (hash stamp
#     inside .venv).
#   * `npm ci` in tests/interop, re-run only when package-lock.json changed (hash
#     stamp inside node_modules).
# Env: PYTHON selects the interpreter for a new venv (default python3, needs 3.11+).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

WANT_APT=1
for arg in "$@"; do
  case "$arg" in
    --no-apt) WANT_APT=0 ;;
    *) die "unknown option $arg" ;;
  esac
done

# --- Debian packages -------------------------------------------------------
installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

missing=()
if ((WANT_APT)); then
  for pkg in chromium nginx redis-server haproxy; do
    installed "$pkg" || missing+=("$pkg")
  done
fi
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v taskset >/dev/null || missing+=(util-linux)

if ((${#missing[@]})); then
  SUDO=()
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
    SUDO=(sudo)
  fi
  say "installing Debian packages: ${missing[*]}"
  # Keep the packages' services from starting (policy-rc.d exit 101 = "denied").
  created_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  rc=0
  {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  } || rc=$?
  [[ -n "$created_policy" ]] && "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get failed (rc=$rc)"
else
  say "Debian packages present"
fi

# --- Python virtualenv -----------------------------------------------------
VENV="$ROOT/.venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  py="${PYTHON:-python3}"
  command -v "$py" >/dev/null || die "$py not found"
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$py is older than 3.11"
  say "creating .venv with $("$py" --version 2>&1)"
  "$py" -m venv "$VENV"
fi
stamp="$VENV/.wsio-setup-stamp"
want="$(cat pyproject.toml setup.py src/wsio/_speedups.c | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  say "pip install -e '.[test,bench]'"
  "$VENV/bin/python" -m pip install -qq -e '.[test,bench]' || die "pip install failed"
  echo "$want" >"$stamp"
else
  say ".venv up to date"
fi

# --- Node packages for the interop tests ----------------------------------
NODE_DIR="$ROOT/tests/interop"
stamp="$NODE_DIR/node_modules/.wsio-setup-stamp"
want="$(sha256sum "$NODE_DIR/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  say "npm ci in tests/interop"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed"
  echo "$want" >"$stamp"
else
  say "tests/interop/node_modules up to date"
fi

say "done"
