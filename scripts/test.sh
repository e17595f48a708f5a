#!/usr/bin/env bash
# test.sh: every check of the repository, as CI runs it (.ci/run calls this).
#
#   installs MinIO once into the test cache (version pinned in DEVELOPERS.md)
#   go vet ./...
#   go test -race -count=1 ./...
#   LAKEHOUSE_TEST_WAREHOUSE=s3 go test ./runtime/query (the query suite on MinIO)
#   go test -run TestCrashSafety ./catalog (200 kill points, without -race)
#   go test -run TestRunCrashSafety ./cli (200 kills of lakehouse run, without -race)
#   go test -run TestRunExitsAtItsSummary ./cli (without -race: exit within 0.5 s of the summary)
#   go test -run 'TestServeLoad|TestServeFaults' ./cli (50 clients for 30 s, 100 kills of lakehouse serve, without -race)
#   every native fuzz target, FUZZ_BUDGET (default 70s) shared between them
#
# Each check prints how long it took; the end lists every check's time.
# Exits non-zero if any check fails and ends with a summary line.
set -uo pipefail
cd "$(dirname "$0")/.."

# --- system packages --------------------------------------------------------
# DuckDB comes from the Go module proxy (duckdb-go's prebuilt library); its
# Arrow interface needs the duckdb_arrow build tag, set for every go command.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=duckdb_arrow"
# containerd and runc (Debian packages) for the containerd launcher's tests,
# which start a private daemon on their own socket and stop it by PID.
if ! command -v containerd >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
	echo "installing containerd and runc"
	if [[ $(id -u) -ne 0 ]]; then
		echo "test.sh: containerd and runc are missing; install them as root: apt-get install -y containerd runc" >&2
		exit 1
	fi
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc >/dev/null || {
		echo "test.sh: apt-get install containerd runc failed" >&2
		exit 1
	}
fi
# Wheels, installed packages and uv downloaded by the envcache and launcher
# tests are kept here between runs (the first run fetches them from PyPI).
export LAKEHOUSE_TEST_CACHE=${LAKEHOUSE_TEST_CACHE:-$HOME/.cache/lakehouse-test}
# Python: the SDK's tests (pytest) and functions need pyarrow; the output
# format tests read every format back with pyarrow and pandas.
PYTHON=${PYTHON:-python3}
export PYTHON
if ! "$PYTHON" -c 'import pyarrow, pandas, pytest' >/dev/null 2>&1; then
	echo "installing pyarrow, pandas and pytest for $PYTHON"
	"$PYTHON" -m pip install --quiet --disable-pip-version-check pyarrow pandas pytest || {
		echo "test.sh: could not install pyarrow, pandas and pytest with $PYTHON -m pip" >&2
		exit 1
	}
fi
# -----------------------------------------------------------------------------

if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: go is not installed" >&2
	exit 1
fi
go version

# --- MinIO --------------------------------------------------------------------
# The S3 warehouse tests start a private MinIO (internal/miniotest). It is
# built once with the version pinned in DEVELOPERS.md and kept in the test
# cache; LAKEHOUSE_MINIO points the tests at it.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
if [[ -z ${LAKEHOUSE_MINIO:-} ]]; then
	export LAKEHOUSE_MINIO=$LAKEHOUSE_TEST_CACHE/bin/minio
	if [[ ! -x $LAKEHOUSE_MINIO || $(cat "$LAKEHOUSE_MINIO.version" 2>/dev/null) != "$MINIO_VERSION" ]]; then
		echo "installing minio@$MINIO_VERSION into $LAKEHOUSE_TEST_CACHE/bin (once)"
		mkdir -p "$LAKEHOUSE_TEST_CACHE/bin"
		# GOFLAGS cleared: minio builds without this repository's duckdb_arrow tag.
		if GOFLAGS= GOBIN="$LAKEHOUSE_TEST_CACHE/bin" go install "github.com/minio/minio@$MINIO_VERSION"; then
			echo "$MINIO_VERSION" >"$LAKEHOUSE_MINIO.version"
		else
			echo "test.sh: go install github.com/minio/minio@$MINIO_VERSION failed" >&2
			exit 1
		fi
	fi
elif [[ ! -x $LAKEHOUSE_MINIO ]]; then
	echo "test.sh: LAKEHOUSE_MINIO=$LAKEHOUSE_MINIO is not an executable" >&2
	exit 1
fi
# -----------------------------------------------------------------------------

passed=0
failed=0
failures=()
timings=()
script_start=$SECONDS

# Test binaries built once and run by several checks (go test links a
# test binary again on every call; the cli one takes half a minute).
bindir=$(mktemp -d "${TMPDIR:-/tmp}/lakehouse-testbin.XXXXXX")
trap 'rm -rf "$bindir"' EXIT

# check NAME CMD...: runs one check, counts it and keeps its time.
check() {
	local name=$1 start=$SECONDS took
	shift
	echo
	echo "==> $name"
	if "$@"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$name")
		echo "FAILED: $name"
	fi
	took=$((SECONDS - start))
	timings+=("$(printf '%5ds  %s' "$took" "$name")")
	echo "--- $name: ${took}s"
}

# testbin PKG [GO TEST FLAGS...]: builds PKG's test binary into $bindir
# once (a name per package and flags) and prints its path.
testbin() {
	local pkg=$1
	shift
	local out
	out="$bindir/$(echo "$pkg $*" | tr -c 'A-Za-z0-9\n' '_').test"
	if [[ ! -x $out ]]; then
		local start=$SECONDS
		go test -c -o "$out" "$@" "./$pkg" >&2 || return 1
		echo "built the test binary of ./$pkg $* in $((SECONDS - start))s" >&2
	fi
	echo "$out"
}

# inpkg PKG BIN ARGS...: runs a test binary in its package's folder, as
# go test does.
inpkg() {
	local pkg=$1 bin=$2
	shift 2
	[[ -n $bin ]] || return 1
	(cd "$pkg" && "$bin" "$@")
}

check "go vet ./..." go vet ./...
if [[ -d python/tests ]]; then
	check "pytest python/tests" "$PYTHON" -m pytest -q python/tests
fi
check "go test -race ./..." go test -race -count=1 ./...
# The query suite again, on an S3 warehouse (a MinIO each test starts),
# through the scan cache.
check "runtime/query on an S3 warehouse" env LAKEHOUSE_TEST_WAREHOUSE=s3 go test -count=1 ./runtime/query
# The race build runs the crash-safety test at 25 kill points (children are
# slow under -race); this plain run does the full 200.
# (in two stores at once)
check "crash safety, 200 SIGKILL points" go test -count=1 -run '^TestCrashSafety$' ./catalog
# The two cli checks without -race share one test binary.
cli_test=$(testbin cli)
# SIGKILL of `lakehouse run` at random moments (LAKEHOUSE_RUN_CRASH_POINTS,
# 30 when the test runs alone, 200 here, in two lakehouses at once):
# skipped under -race, where each run takes several times longer.
export LAKEHOUSE_RUN_CRASH_POINTS=${LAKEHOUSE_RUN_CRASH_POINTS:-200}
check "run crash safety, 200 SIGKILL points of lakehouse run" inpkg cli "$cli_test" -test.count=1 -test.timeout 30m -test.run '^TestRunCrashSafety$'
# A run's process exits within 0.5 s of its summary (the race build allows
# more).
check "run exits at its summary (plain build)" inpkg cli "$cli_test" -test.count=1 -test.timeout 15m -test.run '^TestRunExitsAtItsSummary$'
# lakehouse serve under 50 clients for 30 s, and killed at 100 random
# moments of that load (the race build runs 10 s and 10 kills).
check "serve load and faults, 100 SIGKILL points of lakehouse serve" inpkg cli "$cli_test" -test.count=1 -test.timeout 20m -test.run '^(TestServeLoad|TestServeFaults)$'

# Every `func FuzzX(` in a _test.go file, as "dir FuzzX".
fuzz_targets() {
	grep -rE --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*\(' . |
		grep -v '/vendor/' |
		sed -E 's#^\./##; s#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#; s#^[^/ ]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#. \1#' |
		sort -u
}

# fuzz DIR TARGET: fuzzes one target for $fuzztime, with one
# fuzz-instrumented test binary per package. Go 1.26's fuzz coordinator
# can fail a target with a bare "context deadline exceeded" as -fuzztime
# expires on a loaded machine (go.dev/issue/75804, fixed in Go 1.27): no
# input is written and nothing reproduces. That failure, and only that
# one, is run again once; a real finding prints "Failing input written".
fuzz() {
	local dir=$1 target=$2 out attempt bin
	bin=$(testbin "$dir" -fuzz .) || return 1
	for attempt in 1 2; do
		out=$(inpkg "$dir" "$bin" -test.run '^$' -test.fuzz "^${target}\$" -test.fuzztime "$fuzztime" \
			-test.fuzzcachedir "$fuzzcache/$(go list "./$dir")" 2>&1)
		local rc=$?
		echo "$out"
		if ((rc == 0)); then
			return 0
		fi
		if [[ $attempt == 1 && $out == *"context deadline exceeded"* && $out != *"Failing input written"* ]]; then
			echo "(Go's fuzz coordinator hit its deadline race, go.dev/issue/75804; no input was written: running $target again)"
			continue
		fi
		return "$rc"
	done
}

# The fuzzing budget is shared: FUZZ_BUDGET seconds over all targets, at
# least 5 s each (FUZZTIME, if set, is each target's time instead).
mapfile -t targets < <(fuzz_targets)
budget=${FUZZ_BUDGET:-70}
each=$((${budget%s} / (${#targets[@]} > 0 ? ${#targets[@]} : 1)))
fuzztime=${FUZZTIME:-$((each > 5 ? each : 5))s}
fuzzcache="$(go env GOCACHE)/fuzz"
echo
echo "fuzzing ${#targets[@]} targets for $fuzztime each"
for line in "${targets[@]}"; do
	read -r dir target <<<"$line"
	[[ -n $target ]] || continue
	check "fuzz $target (./$dir)" fuzz "$dir" "$target"
done

echo
echo "time of each check:"
printf '%s\n' "${timings[@]}"
echo "total: $((SECONDS - script_start))s"
echo
if ((failed > 0)); then
	printf 'failed: %s\n' "${failures[@]}"
fi
echo "checks: $passed passed, $failed failed"
((failed == 0))
