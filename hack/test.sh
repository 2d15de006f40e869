#!/usr/bin/env bash
# `make test`: the whole suite in two phases on one stack.
#
# Most modules only touch their own namespace, their own operator and their own gateway objects: they run on
# two pytest-xdist workers (whole modules per worker, so a module's operator starts once). Modules and tests
# marked `serial` (tests/conftest.py SERIAL says why for each) restart a gateway, stop a Tyk node or run a
# cluster-wide operator: they run afterwards, alone.
#
# Extra arguments go to both pytest runs (e.g. `hack/test.sh -k tyk`); not `-m`, which would replace the
# phases' own marker expressions.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORKERS=${TORII_TEST_WORKERS:-2}
STACK_DIR=${TORII_STACK_DIR:-.stack}

# The local stack is started once, here, so the workers never race to start it, and stopped at the end only
# if it was not running before. TORII_STACK_ENV names an existing cluster: nothing is started or stopped.
started=0
if [[ -z ${TORII_STACK_ENV:-} ]]; then
  if ! { [[ -f $STACK_DIR/env ]] && python3 hack/stack.py status >/dev/null 2>&1; }; then
    started=1
  fi
  TORII_TYK_NODES=${TORII_TYK_NODES:-3} python3 hack/stack.py up || exit 1
  export TORII_KEEP_STACK=1
fi
stop_stack() { [[ $started == 1 ]] && python3 hack/stack.py down; }
trap 'stop_stack; exit 130' INT TERM

# pytest exits 5 when a phase collects nothing (e.g. -k matching only serial tests): that phase is no failure,
# but both collecting nothing is.
$PY -m pytest -n "$WORKERS" --dist loadfile -m 'not serial' "$@"
first=$?
if [[ $first == 2 || $first == 3 || $first == 4 ]]; then  # interrupted, internal or usage error: stop here
  stop_stack
  exit $first
fi
$PY -m pytest -m serial "$@"
second=$?
stop_stack

if [[ $first == 5 && $second == 5 ]]; then exit 5; fi
for status in $first $second; do
  [[ $status != 0 && $status != 5 ]] && exit "$status"
done
exit 0
