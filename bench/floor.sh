#!/bin/sh
# Runs the root package's benchmarks of first sight and repeat (through
# ValidateAccessToken and the middleware, next to the bare RSA check, and the
# parallel ones next to the minimal context middleware) in both crypto builds,
# Go's own and GOEXPERIMENT=boringcrypto (cgo, linux/amd64 and linux/arm64),
# interleaved in one run, and prints the table of bench/cmd/floortable:
#
#   go test -c . ; GOEXPERIMENT=boringcrypto go test -c .
#   <binary> -test.run '^$' -test.bench 'ValidateAccessToken|Authenticated' -test.benchmem -test.cpu 1,2
#
# Usage: bench/floor.sh [rounds] [output file]   (defaults: 5, /tmp/bench-floor.txt)
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-5}
out=${2:-/tmp/bench-floor.txt}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/default.test" .
GOEXPERIMENT=boringcrypto CGO_ENABLED=1 go test -c -o "$dir/boringcrypto.test" .
: >"$out"
i=0
while [ "$i" -lt "$rounds" ]; do
	for build in default boringcrypto; do
		"$dir/$build.test" -test.run '^$' -test.bench 'ValidateAccessToken|Authenticated' -test.benchmem -test.cpu 1,2 |
			sed -n "s/^Benchmark/$build Benchmark/p" >>"$out"
	done
	i=$((i + 1))
done
echo "raw output: $out"
go -C bench run ./cmd/floortable "$out"
