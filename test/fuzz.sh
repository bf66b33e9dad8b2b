#!/usr/bin/env bash
# Runs native Go fuzz targets one after another: test/fuzz.sh FUZZTIME pkg:Target...
# The first finding stops the run, with its failing input written under the
# package's testdata/fuzz/<Target>/ (commit it with the fix, as a regression
# test).
#
# Go 1.26's fuzzing coordinator can fail a target at the -fuzztime deadline
# with a bare "context deadline exceeded" when a worker is mid-call as the
# deadline fires (go.dev/issue/75804, fixed in Go 1.27): nothing was found
# and no input is written. That one result, and only with no new failing
# input on disk, is reported and not counted as a finding.
set -euo pipefail
fuzztime=$1
shift
go=${GO:-go}
for t in "$@"; do
  pkg=${t%%:*}
  name=${t##*:}
  dir="$pkg/testdata/fuzz/$name"
  echo "fuzz $name ($pkg) for $fuzztime"
  before=$(ls "$dir" 2>/dev/null | sort || true)
  # A package in a module of its own (policies/library/pssref) runs there.
  run=("$go" test)
  target=$pkg
  if [ -f "$pkg/go.mod" ]; then
    run=("$go" test -C "$pkg")
    target=.
  fi
  if out=$("${run[@]}" -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "$target" 2>&1); then
    grep -v '^fuzz: elapsed' <<<"$out" || true
    continue
  fi
  after=$(ls "$dir" 2>/dev/null | sort || true)
  fails=$(grep -c -- '^--- FAIL' <<<"$out" || true)
  if [ "$before" = "$after" ] && [ "$fails" = 1 ] &&
    grep -A1 -- "^--- FAIL: $name " <<<"$out" | grep -qx '    context deadline exceeded' &&
    ! grep -q 'Failing input written' <<<"$out"; then
    grep -v '^fuzz: elapsed' <<<"$out" || true
    echo "fuzz $name: stopped by Go's fuzzing coordinator at the deadline with nothing found and no failing input (go.dev/issue/75804): not a finding"
    continue
  fi
  echo "$out"
  exit 1
done
