#!/usr/bin/env bash
# `make test`: every test, in two pytest runs side by side (tests/conftest.py's DBFLEET_TEST_GROUP) -
# 'fleet': the tests that need a fleet (the local MariaDB fleet or the namespace fleet, which one
# session starts and stops: tests/collection, tests/netfleet, tests/install and every test that takes
# a fleet fixture or carries the fleet/netfleet marker) with tests/portal, tests/schedules and
# tests/unit, so that both take about as long; 'rest': all the others. Most of the suite waits on
# servers, plays and sockets: one run keeps about one core busy, two keep two. Each
# run has its own temporary directory; the fleet run's output follows the other's, then a line per
# run. Exit status: 0 when both passed; pytest's 5 (nothing collected) counts as a failure.
#   scripts/run_tests.sh [pytest arguments...]     DBFLEET_TEST_SERIAL=1: one run, as plain pytest
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

if [ "${DBFLEET_TEST_SERIAL:-}" = 1 ]; then
    "$PY" -m pytest "$@"
    status=$?
    [ $status -eq 5 ] && echo "make test: pytest collected no tests" >&2
    exit $status
fi

work=$(mktemp -d /tmp/dbfleet-tests.XXXXXX)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
DBFLEET_TEST_GROUP=fleet "$PY" -m pytest --basetemp="$work/fleet" "$@" >"$work/fleet.log" 2>&1 &
fleet_pid=$!
DBFLEET_TEST_GROUP=rest "$PY" -m pytest --basetemp="$work/rest" "$@"
rest=$?
rest_seconds=$(( $(date +%s) - started ))
wait "$fleet_pid"
fleet=$?
fleet_seconds=$(( $(date +%s) - started ))
echo
echo "================ the fleet group (run alongside the above) ================"
cat "$work/fleet.log"
echo
# pytest's 5: this group collected nothing (a subset given by hand may hold only the other group's).
describe() { case $1 in 0) echo passed;; 5) echo "collected nothing";; *) echo "FAILED (pytest exit $1)";; esac; }
echo "make test: the rest group $(describe $rest) in ${rest_seconds} s; the fleet group $(describe $fleet) in ${fleet_seconds} s"
if [ $rest -eq 5 ] && [ $fleet -eq 5 ]; then
    echo "make test: pytest collected no tests" >&2
    exit 5
fi
for status in $rest $fleet; do
    if [ $status -ne 0 ] && [ $status -ne 5 ]; then exit $status; fi
done
exit 0
