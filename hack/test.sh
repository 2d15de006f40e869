#!/usr/bin/env bash
# `make test`: the whole suite in two phases on one local stack.
#
# Most modules only touch their own namespace, their own operator and their own gateway objects: they run on
# two pytest-xdist workers (whole modules per worker, so a module's operator starts once). The e2e modules spend
# most of their time waiting for the gateways, so two workers on two cores nearly halve their time.
# Modules marked `serial` restart a gateway, stop a Tyk node, import everything a gateway holds, or run a
# cluster-wide operator: they run afterwards, alone.
#
# Extra arguments go to both pytest runs (e.g. `hack/test.sh -k tyk`).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORKERS=${TORII_TEST_WORKERS:-2}

# The stack is started once, here, so the workers never race to start it; stopped at the end only if it was
# not running before (as the suite's own fixture does when run alone).
was_up=0
[[ -f .stack/env ]] && python3 hack/stack.py status >/dev/null 2>&1 && was_up=1
TORII_TYK_NODES=${TORII_TYK_NODES:-3} python3 hack/stack.py up || exit 1
export TORII_KEEP_STACK=1

status=0
$PY -m pytest -n "$WORKERS" --dist loadfile -m 'not serial' "$@" || status=$?
# 5: nothing collected (e.g. -k matching only serial tests) is not a failure of this phase.
[[ $status == 5 ]] && status=0
$PY -m pytest -m serial "$@"
serial=$?
[[ $serial != 0 && $serial != 5 ]] && status=$serial

[[ $was_up == 0 ]] && python3 hack/stack.py down
exit $status
