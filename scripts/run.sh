#!/usr/bin/env bash
# The main job: set up what is missing (no Debian packages needed), then run `wsio`.
#
#   scripts/run.sh              the demo chat (wsio demo) on http://127.0.0.1:8000/
#   scripts/run.sh ARGS...      wsio ARGS... (e.g. scripts/run.sh echo, scripts/run.sh --help)
#
# The demo page uses the official socket.io-client browser bundle, from the npm
# packages that setup.sh installs under tests/interop.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --no-apt >&2
export WSIO_CLIENT_DIST="${WSIO_CLIENT_DIST:-$ROOT/tests/interop/node_modules/socket.io-client/dist}"
if (($# == 0)); then
  set -- demo
fi
exec "$ROOT/.venv/bin/wsio" "$@"
