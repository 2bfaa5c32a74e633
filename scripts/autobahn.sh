#!/usr/bin/env bash
# Run the Autobahn|Testsuite (../shared/tools/autobahn) against `wsio echo`.
#
#   scripts/autobahn.sh          all 517 cases, compression included (about 10 minutes)
#   scripts/autobahn.sh core     groups 1-10 only (under a minute)
#   scripts/autobahn.sh '6.*'    any case pattern the suite accepts
#
# Exit status: 0 only when no case FAILED (the suite's own run.sh decides).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SUITE="$ROOT/../shared/tools/autobahn/run.sh"
[[ -x "$SUITE" ]] || { echo "autobahn: $SUITE not found (../shared beside the checkout)" >&2; exit 2; }
"$ROOT/scripts/setup.sh" --no-apt >&2 || exit 1
PY="$ROOT/.venv/bin/python"
port="$("$PY" -c 'import sys; sys.path.insert(0, "tests"); from support.procs import free_port; print(free_port())')"
setsid "$PY" -m wsio echo --host 127.0.0.1 --port "$port" --max-size 33554432 >/dev/null &
pid=$!
trap 'kill -TERM -- "-$pid" 2>/dev/null; wait "$pid" 2>/dev/null' EXIT
"$PY" -c 'import sys; sys.path.insert(0, "tests"); from support.procs import wait_listening; wait_listening(int(sys.argv[1]), timeout=15)' "$port" || exit 1
AUTOBAHN_AGENT=wsio "$SUITE" "ws://127.0.0.1:$port" "$@"
