#!/bin/sh
# Runs BenchmarkCompare at -cpu 1,2 and prints the comparison as markdown:
#
#   go test -run '^$' -bench Compare -benchmem -cpu 1,2 -count N
#
# Usage: ./run.sh [count] [output file]     (defaults: 5, /tmp/bench-compare.txt)
#
# STAT=min reports the minimum of the runs instead of the median (better on
# a shared, noisy machine). ROUNDS=k repeats the whole go test k times into
# the same file, so that the runs of each sub-benchmark are spread over time
# instead of back to back (default 1).
set -eu
cd "$(dirname "$0")"
count=${1:-5}
out=${2:-/tmp/bench-compare.txt}
rounds=${ROUNDS:-1}
: >"$out"
i=0
while [ "$i" -lt "$rounds" ]; do
	go test -run '^$' -bench Compare -benchmem -cpu 1,2 -count "$count" -timeout 60m . | tee -a "$out"
	i=$((i + 1))
done
echo
echo "raw output: $out"
go run ./cmd/benchtable -stat "${STAT:-median}" "$out"
