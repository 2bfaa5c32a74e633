#!/usr/bin/env bash
# The main job: set up what is missing (no Debian packages needed), then run `wsio`.
#
#   scripts/run.sh              the WebSocket echo server (wsio echo)
#   scripts/run.sh ARGS...      wsio ARGS... (e.g. scripts/run.sh --help)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --no-apt >&2
if (($# == 0)); then
  set -- echo
fi
exec "$ROOT/.venv/bin/wsio" "$@"
