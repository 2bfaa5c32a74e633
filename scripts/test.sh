#!/usr/bin/env bash
# Install what is missing, then lint, format-check and run the test suite.
#
#   scripts/test.sh [PYTEST ARGS...]
#
# Every step runs even when an earlier check failed; the exit status is non-zero
# if any step failed. Env: WSIO_AUTOBAHN=1 also runs the Autobahn|Testsuite core
# cases (all but compression) against `python -m wsio echo`.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/scripts/setup.sh" || exit 1

PY="$ROOT/.venv/bin/python"
failed=()
step() {
  local name="$1"
  shift
  printf 'test: %s\n' "$name"
  "$@" || failed+=("$name")
}

step "ruff check" .venv/bin/ruff check src tests bench
step "ruff format --check" .venv/bin/ruff format --check src tests bench
step "mypy" "$PY" -m mypy
step "pytest" "$PY" -m pytest -q "$@"

# --- autobahn core: enabled once wsio echo exists (WSIO_AUTOBAHN=1) ---------
autobahn_core() {
  local port pid rc=0
  port="$("$PY" -c 'import sys; sys.path.insert(0, "tests"); from support.procs import free_port; print(free_port())')" || return 1
  setsid "$PY" -m wsio echo --host 127.0.0.1 --port "$port" --max-size 33554432 &
  pid=$!
  "$PY" -c 'import sys; sys.path.insert(0, "tests"); from support.procs import wait_listening; wait_listening(int(sys.argv[1]), timeout=15)' "$port" || rc=1
  if ((rc == 0)); then
    "$ROOT/../shared/tools/autobahn/run.sh" "ws://127.0.0.1:$port" core || rc=$?
  fi
  kill -TERM -- "-$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return "$rc"
}
if [[ "${WSIO_AUTOBAHN:-0}" == 1 ]]; then
  step "autobahn core" autobahn_core
fi

if ((${#failed[@]})); then
  printf 'test: FAILED: %s\n' "$(IFS=,; echo "${failed[*]}")" >&2
  exit 1
fi
echo "test: all steps passed"
