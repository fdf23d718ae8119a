#!/usr/bin/env bash
# Runs the tests of every module of the repository (the root module, the
# adapters, rediscache, e2e, examples, bench), each with its own go.mod, with
# the race detector. Extra arguments go to `go test`, e.g. ./test.sh -count=1.
# FIEF_REQUIRE_REDIS=1 and FIEF_REQUIRE_CHROMIUM=1 turn the skips of the Redis
# and browser tests (when redis-server or chromium is missing) into failures.
set -euo pipefail
cd "$(dirname "$0")"
status=0
for mod in $(git ls-files --cached --others --exclude-standard '*go.mod' | xargs -n1 dirname | sort -u); do
  echo "== $mod"
  (cd "$mod" && go test -race "$@" ./...) || status=1
done
exit $status
