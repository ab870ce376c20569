#!/usr/bin/env bash
# fuzz.sh runs every Fuzz target of the module, one at a time (go test
# -fuzz takes one target per run), for FUZZTIME each, and fails when one
# of them fails; `make fuzz` runs it. Every target runs even after a
# failure, and the summary names each that failed.
#
# FUZZTIME is a count by default (20000x): a duration (-fuzztime=1m) can end
# in a spurious "context deadline exceeded" failure of Go's fuzz
# coordinator (golang/go#75804, fixed in Go 1.27) that saves no input. With
# a duration, such an ending is reported as a flake, not a failure; any
# other failure, and any run that saved a failing input, fails.
#
# FUZZMINIMIZETIME bounds the minimisation of each input the fuzzer keeps
# (a count, 500x by default; Go's default is 60 s each), so that a run takes
# about the same time on a loaded machine: a failing input is still
# minimised, only less.
#
# Environment: GO (default: go), FUZZTIME, FUZZMINIMIZETIME, FUZZROOT (the
# module to fuzz, default: this checkout).
set -euo pipefail

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-20000x}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-500x}
cd "${FUZZROOT:-$(dirname "$0")/..}"

# targets prints "DIR NAME" for every func FuzzXxx of the module's tests.
targets() {
	local f
	grep -rlE --include='*_test.go' --exclude-dir=.git --exclude-dir=testdata \
		--exclude-dir=bin '^func Fuzz[A-Za-z0-9_]*\(' . | sort | while read -r f; do
		sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$f" | while read -r name; do
			echo "$(dirname "$f") $name"
		done
	done
}

# spurious reports whether the failed run in log is the fuzz coordinator's
# deadline race: the target itself failed with nothing but "context
# deadline exceeded" (no seed or input failed), and no input was saved.
spurious() {
	local log=$1 name=$2
	grep -qE "^--- FAIL: ${name} \(" "$log" &&
		grep -qxE '[[:space:]]*context deadline exceeded' "$log" &&
		! grep -qE "^[[:space:]]*--- FAIL: ${name}/" "$log" &&
		! grep -q 'Failing input written to' "$log"
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=() flaked=()
n=0
while read -r dir name; do
	n=$((n + 1))
	start=$SECONDS
	if "$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" \
		-fuzzminimizetime="$FUZZMINIMIZETIME" "$dir" </dev/null >"$log" 2>&1; then
		echo "fuzz: ok    $dir $name ($((SECONDS - start))s)"
	elif spurious "$log" "$name"; then
		echo "fuzz: FLAKE $dir $name ($((SECONDS - start))s): Go's fuzzer ended with \"context deadline exceeded\" and saved no input, its known race of a timed -fuzztime; not counted as a failure"
		flaked+=("$dir $name")
	else
		cat "$log"
		echo "fuzz: FAIL  $dir $name ($((SECONDS - start))s)"
		failed+=("$dir $name")
	fi
done < <(targets)

if [ "$n" -eq 0 ]; then
	echo "fuzz: no Fuzz targets"
	exit 0
fi
echo "fuzz: $n targets for $FUZZTIME each: $((n - ${#failed[@]} - ${#flaked[@]})) passed, ${#flaked[@]} flaked, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'fuzz: failed: %s\n' "${failed[@]}"
	echo "fuzz: a failing input is saved under the package's testdata/fuzz/; commit it, it becomes a regression test"
	exit 1
fi
