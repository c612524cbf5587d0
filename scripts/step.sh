#!/usr/bin/env bash
# scripts/step.sh NAME CMD [ARGS...]: one step of `make test`, framed so
# the log shows where the time goes: "== NAME" before, "== NAME: ok in Ns"
# (or FAILED) after; exits with CMD's status.
name="$1"
shift
echo "== $name"
start=$SECONDS
"$@"
rc=$?
verdict="ok"
[[ $rc -eq 0 ]] || verdict="FAILED (exit $rc)"
echo "== $name: $verdict in $((SECONDS - start))s"
exit "$rc"
