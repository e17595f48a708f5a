#!/usr/bin/env bash
# test.sh: every check of the repository, as CI runs it (.ci/run calls this).
#
#   installs MinIO once into the test cache (version pinned in DEVELOPERS.md)
#   go vet ./...
#   go test -race -p 3 -count=1 ./..., the longest packages first (some cli process tests in the
#     plain build, see plain_cli; the cli tests' lakehouse processes are the plain build's)
#   LAKEHOUSE_TEST_WAREHOUSE=s3 go test ./runtime/query ./catalog ./catalog/iceberg (the query and catalog suites on MinIO)
#   go test -run TestCrashSafety ./catalog (200 kill points, without -race)
#   go test -run TestRunCrashSafety ./cli (200 kills of lakehouse run, without -race)
#   go test -run TestRunExitsAtItsSummary ./cli (without -race: exit within 0.5 s of the summary)
#   go test -run 'TestServeLoad|TestServeFaults' ./cli (50 clients for 30 s, 100 kills of lakehouse serve, without -race)
#   go test -run "$plain_cli" ./cli (the fleet as processes, damaged catalogs, serve's flags, without -race)
#   every native fuzz target, FUZZ_BUDGET (default 50s) shared between them
#
# Test binaries are linked with go test -c into the test cache
# ($LAKEHOUSE_TEST_CACHE/testbin, about 3 GB), where a run with warm caches
# finds them up to date, and run from there (see testbin).
# Each check prints how long it took; the end lists every check's time.
# Exits non-zero if any check fails and ends with a summary line.
set -uo pipefail
cd "$(dirname "$0")/.."

# --- system packages --------------------------------------------------------
# DuckDB comes from the Go module proxy (duckdb-go's prebuilt library); its
# Arrow interface needs the duckdb_arrow build tag, set for every go command.
# Test binaries are linked without DWARF (-ldflags=-w): the checks link about
# fifty, most with DuckDB's library, and DWARF is half of each link's time
# (the cli's race binary: 13 s of CPU, 4.5 s without); stack traces do not
# need it. And without the clone's folder in them (-trimpath): the build
# cache keys a package compiled without it by its folder, so a clean clone
# at a new path compiled every package of the repository again for vet and
# the race, plain and fuzz builds: 167 s of CPU of the 1,586 s a run took
# (process accounting, one run). Tests find the repository from their
# working directory (internal/repodir).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=duckdb_arrow -ldflags=-w -trimpath"
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
# The outside-engine tests read our tables with PyIceberg (REST catalog),
# DuckDB's iceberg extension from PyPI, the ADBC Flight SQL driver and
# Spark (pyspark, with Iceberg's runtime jar fetched below).
PY_TEST_PACKAGES="pyarrow pandas pytest pyiceberg==0.12.0 adbc-driver-manager==1.13.0 adbc-driver-flightsql==1.13.0 duckdb==1.4.4 duckdb-ext-iceberg==1.4.4.20260205 duckdb-ext-avro==1.4.4.20260205 duckdb-ext-httpfs==1.4.4.20260205 pyspark==3.5.8"
if ! "$PYTHON" -c 'import pyarrow, pandas, pytest, pyiceberg, adbc_driver_flightsql, duckdb' >/dev/null 2>&1 ||
	[ "$("$PYTHON" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null)" != 3.5.8 ] ||
	! "$PYTHON" -m pip show --quiet duckdb-ext-avro >/dev/null 2>&1 ||
	! "$PYTHON" -m pip show --quiet duckdb-ext-httpfs >/dev/null 2>&1 ||
	[ "$("$PYTHON" -c 'import duckdb; print(duckdb.__version__)')" != 1.4.4 ]; then
	echo "installing $PY_TEST_PACKAGES for $PYTHON"
	# shellcheck disable=SC2086
	"$PYTHON" -m pip install --quiet --disable-pip-version-check $PY_TEST_PACKAGES || {
		echo "test.sh: could not install $PY_TEST_PACKAGES with $PYTHON -m pip" >&2
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

# maven_fetch URL OUT: downloads URL (from Maven Central) to OUT, checked
# against the sha1 Maven Central publishes beside it.
maven_fetch() {
	local url=$1 out=$2 want got
	if ! want=$(curl -fsSL "$url.sha1") || ! curl -fsSL -o "$out" "$url"; then
		rm -f "$out"
		echo "test.sh: could not fetch $url" >&2
		return 1
	fi
	got=$(sha1sum "$out" | cut -d' ' -f1)
	if [[ $got != "${want%% *}" ]]; then
		rm -f "$out"
		echo "test.sh: $url has sha1 $got, Maven Central says ${want%% *}" >&2
		return 1
	fi
}

# --- Iceberg's Spark runtime -----------------------------------------------------
# python/tests/test_spark_rest.py runs Spark 3.5 (pyspark, above) with
# Iceberg's runtime jar from Maven Central, fetched once into the test cache
# and checked against Maven Central's sha1; LAKEHOUSE_ICEBERG_SPARK_JAR
# points the test at it. Spark runs on the machine's Java 17 (JAVA_HOME or
# java on PATH).
ICEBERG_SPARK_RUNTIME=iceberg-spark-runtime-3.5_2.12
ICEBERG_VERSION=1.10.0
if [[ -z ${LAKEHOUSE_ICEBERG_SPARK_JAR:-} ]]; then
	export LAKEHOUSE_ICEBERG_SPARK_JAR=$LAKEHOUSE_TEST_CACHE/jars/$ICEBERG_SPARK_RUNTIME-$ICEBERG_VERSION.jar
	if [[ ! -f $LAKEHOUSE_ICEBERG_SPARK_JAR ]]; then
		echo "fetching $ICEBERG_SPARK_RUNTIME-$ICEBERG_VERSION.jar into $LAKEHOUSE_TEST_CACHE/jars (once)"
		mkdir -p "$LAKEHOUSE_TEST_CACHE/jars"
		url=https://repo1.maven.org/maven2/org/apache/iceberg/$ICEBERG_SPARK_RUNTIME/$ICEBERG_VERSION/$ICEBERG_SPARK_RUNTIME-$ICEBERG_VERSION.jar
		maven_fetch "$url" "$LAKEHOUSE_ICEBERG_SPARK_JAR.part" || exit 1
		mv "$LAKEHOUSE_ICEBERG_SPARK_JAR.part" "$LAKEHOUSE_ICEBERG_SPARK_JAR"
	fi
elif [[ ! -f $LAKEHOUSE_ICEBERG_SPARK_JAR ]]; then
	echo "test.sh: LAKEHOUSE_ICEBERG_SPARK_JAR=$LAKEHOUSE_ICEBERG_SPARK_JAR is not a file" >&2
	exit 1
fi
# --- Trino ----------------------------------------------------------------------
# python/tests/test_trino_rest.py runs a single-node Trino (Iceberg
# connector, REST catalog) on Java 24+ (LAKEHOUSE_TRINO_JAVA_HOME, default
# the newest Temurin of 24 or later in /usr/lib/jvm). The server tarball from Maven Central
# (821 MB, sha1-checked) is unpacked once into the test cache, keeping lib/,
# bin/ and plugin/iceberg/ (about 500 MB); LAKEHOUSE_TRINO_HOME points the
# test at it.
TRINO_VERSION=476
if [[ -z ${LAKEHOUSE_TRINO_HOME:-} ]]; then
	export LAKEHOUSE_TRINO_HOME=$LAKEHOUSE_TEST_CACHE/trino-server-$TRINO_VERSION
	if [[ ! -d $LAKEHOUSE_TRINO_HOME/plugin/iceberg ]]; then
		echo "fetching trino-server-$TRINO_VERSION into $LAKEHOUSE_TEST_CACHE (once)"
		url=https://repo1.maven.org/maven2/io/trino/trino-server/$TRINO_VERSION/trino-server-$TRINO_VERSION.tar.gz
		tmp=$LAKEHOUSE_TEST_CACHE/trino-server-$TRINO_VERSION.tar.gz.part
		mkdir -p "$LAKEHOUSE_TEST_CACHE"
		maven_fetch "$url" "$tmp" || exit 1
		# The tarball hard-links jars shared between plugins: unpack it
		# whole, then drop every plugin but iceberg.
		rm -rf "$LAKEHOUSE_TRINO_HOME.part" && mkdir -p "$LAKEHOUSE_TRINO_HOME.part" &&
			tar xzf "$tmp" -C "$LAKEHOUSE_TRINO_HOME.part" --strip-components=1 &&
			find "$LAKEHOUSE_TRINO_HOME.part/plugin" -mindepth 1 -maxdepth 1 ! -name iceberg -exec rm -rf {} + &&
			mv "$LAKEHOUSE_TRINO_HOME.part" "$LAKEHOUSE_TRINO_HOME"
		rc=$?
		rm -f "$tmp"
		if ((rc != 0)); then
			rm -rf "$LAKEHOUSE_TRINO_HOME.part"
			echo "test.sh: could not unpack trino-server-$TRINO_VERSION into $LAKEHOUSE_TRINO_HOME" >&2
			exit 1
		fi
	fi
elif [[ ! -d $LAKEHOUSE_TRINO_HOME/plugin/iceberg ]]; then
	echo "test.sh: LAKEHOUSE_TRINO_HOME=$LAKEHOUSE_TRINO_HOME has no plugin/iceberg" >&2
	exit 1
fi
# -----------------------------------------------------------------------------

passed=0
failed=0
failures=()
timings=()
script_start=$SECONDS

# Test binaries: linked into the test cache, where they stay between runs
# (tbcache), and hard-linked from there into this run's folder (bindir).
# go test links a test binary again on every call, even when nothing
# changed: about 150 s of CPU per run (process accounting), a fifth of
# the run's wall time on two cores. go test -c -o FILE links only when
# FILE's build ID does not match its inputs, so a run with warm caches
# links nothing. Each cached binary is written under a lock (flock), and
# this run uses its own hard link: a suite beside this one that relinks
# it replaces the cache's file, not the one running here.
tbcache=${LAKEHOUSE_TESTBIN_CACHE:-$LAKEHOUSE_TEST_CACHE/testbin}
mkdir -p "$tbcache" || exit 1
bindir=$(mktemp -d "${TMPDIR:-/tmp}/lakehouse-testbin.XXXXXX")
prebuild_pid=
lane_pids=() # the fuzz lanes, below
trap '[[ -z $prebuild_pid ]] || kill "$prebuild_pid" 2>/dev/null; for p in "${bg_pids[@]}" "${lane_pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$bindir"' EXIT

# account NAME RC TOOK: counts a finished check and keeps its time.
account() {
	local name=$1 rc=$2 took=$3
	if ((rc == 0)); then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$name")
		echo "FAILED: $name"
	fi
	timings+=("$(printf '%5ds  %s' "$took" "$name")")
	echo "--- $name: ${took}s"
}

# check NAME CMD...: runs one check, counts it and keeps its time.
check() {
	local name=$1 start=$SECONDS rc
	shift
	echo
	echo "==> $name"
	"$@"
	rc=$?
	account "$name" "$rc" $((SECONDS - start))
}

# check_bg NAME CMD...: starts a check in the background, its output kept
# aside; wait_bg waits for it, prints its output and counts it. For checks
# that mostly wait (processes, timeouts) beside ones that compute.
bg_names=()
bg_pids=()
check_bg() {
	local name=$1 n=${#bg_names[@]}
	shift
	bg_names+=("$name")
	(
		start=$SECONDS
		"$@" >"$bindir/bg$n.log" 2>&1
		echo "$? $((SECONDS - start))" >"$bindir/bg$n.rc"
	) &
	bg_pids+=($!)
	echo
	echo "==> $name: started in the background, its output follows when it ends"
}
wait_bg() {
	local i rc took
	for i in "${!bg_names[@]}"; do
		wait "${bg_pids[$i]}"
		echo
		echo "==> ${bg_names[$i]} (ran in the background)"
		cat "$bindir/bg$i.log"
		read -r rc took <"$bindir/bg$i.rc" || { rc=1; took=0; }
		account "${bg_names[$i]}" "$rc" "$took"
	done
	bg_names=()
	bg_pids=()
}

# testbin PKG [GO TEST FLAGS...]: builds PKG's test binary (a name per
# package and flags) into the test cache if it is out of date, links it
# into $bindir once and prints its path there. The binary appears whole or
# not at all (linked beside it, then renamed).
testbin() {
	local pkg=$1
	shift
	local name out part
	name="$(echo "$pkg $*" | tr -c 'A-Za-z0-9\n' '_').test"
	out=$bindir/$name
	part=$out.part$BASHPID
	if [[ ! -x $out ]]; then
		local start=$SECONDS
		if ! (
			flock 9 || exit 1
			go test -c -o "$tbcache/$name" "$@" "./$pkg" >&2 || exit 1
			ln -f "$tbcache/$name" "$part" 2>/dev/null || cp "$tbcache/$name" "$part"
		) 9>"$tbcache/$name.lock" || ! mv "$part" "$out"; then
			rm -f "$part"
			return 1
		fi
		echo "the test binary of ./$pkg $*: $((SECONDS - start))s (linked if out of date)" >&2
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

# race_tests: the tests of every package under the race detector, as
# go test -race -p 3 ./... would run them (each package's binary in its
# folder, -count=1, a 30 min timeout, race_skip below skipped), but with
# binaries from the test cache (testbin above: one go test -c for every
# package, linking only those out of date), and the longest packages
# first by the last run's times (kept in the test cache): go test starts
# them in import order, and the cli's, more than two thirds of the step,
# started late. Prints "ok" or the output and "FAIL" per package.
race_tests() {
	local racedir=$bindir/race ip dir name
	mkdir -p "$racedir" "$tbcache/race" || return 1
	if ! (
		flock 9 || exit 1
		go test -race -c -o "$tbcache/race/" ./... >/dev/null || exit 1
		for name in "$tbcache"/race/*.test; do
			ln -f "$name" "$racedir/" 2>/dev/null || cp "$name" "$racedir/" || exit 1
		done
	) 9>"$tbcache/race.lock"; then
		echo "test.sh: could not build the race test binaries (above)" >&2
		return 1
	fi
	declare -A took
	if [[ -f $tbcache/race.times ]]; then
		while read -r t ip; do took[$ip]=$t; done <"$tbcache/race.times"
	fi
	local pids=() done= pkgs
	: >"$racedir/times"
	if ! pkgs=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' ./...) || [[ -z $pkgs ]]; then
		echo "test.sh: go list found no package with tests" >&2
		return 1
	fi
	while read -r _ ip dir; do
		while ((${#pids[@]} >= 3)); do
			wait -n -p done "${pids[@]}"
			local keep=() p
			for p in "${pids[@]}"; do
				[[ $p == "$done" ]] || keep+=("$p")
			done
			pids=("${keep[@]}")
		done
		LAKEHOUSE_TEST_CLI_BIN=$cli_test pkg_test "$racedir" "$ip" "$dir" "$racedir/$(basename "$ip").test" \
			-test.count=1 -test.timeout=30m -test.skip "$race_skip" &
		pids+=($!)
	done < <(echo "$pkgs" |
		while read -r ip dir; do
			[[ -n $ip ]] && echo "${took[$ip]:-100000} $ip $dir"
		done | sort -s -k1,1nr)
	wait "${pids[@]}" # the packages' only: checks in the background go on
	mv "$racedir/times" "$tbcache/race.times" 2>/dev/null
	[[ ! -e $racedir/failed ]]
}

# pkg_test LOGDIR NAME DIR BIN ARGS...: runs a package's test binary BIN
# in DIR with ARGS, its output kept in LOGDIR; prints "ok" and its time,
# or the output and "FAIL" (as go test does), appends "seconds NAME" to
# LOGDIR/times, and creates LOGDIR/failed if it failed.
pkg_test() {
	local logdir=$1 name=$2 dir=$3 bin=$4 start=$SECONDS rc log
	shift 4
	log=$logdir/$(echo "$name" | tr -c 'A-Za-z0-9\n' '_').log
	(cd "$dir" && "$bin" -test.paniconexit0 "$@") >"$log" 2>&1
	rc=$?
	{
		flock 8
		if ((rc == 0)); then
			printf 'ok  \t%s\t%ds\n' "$name" $((SECONDS - start))
		else
			cat "$log"
			printf 'FAIL\t%s\t%ds\n' "$name" $((SECONDS - start))
			touch "$logdir/failed"
		fi
		echo "$((SECONDS - start)) $name" >>"$logdir/times"
	} 8>"$logdir/print.lock"
}

# s3_tests: the tests of runtime/query, catalog and catalog/iceberg again,
# side by side, their tables on an S3 warehouse (see below).
s3_tests() {
	local logdir=$bindir/s3 pkg bin pids=()
	mkdir -p "$logdir" || return 1
	for pkg in runtime/query catalog catalog/iceberg; do
		bin=$(testbin "$pkg") || return 1
		LAKEHOUSE_TEST_WAREHOUSE=s3 pkg_test "$logdir" "./$pkg" "$pkg" "$bin" \
			-test.count=1 -test.timeout=30m -test.skip '^TestCrashSafety$' &
		pids+=($!)
	done
	wait "${pids[@]}"
	[[ ! -e $logdir/failed ]]
}

# go vet runs once, here: the go test commands below pass -vet=off (go
# test's own vet pass, a subset of these analyzers, took 9 s of CPU in the
# race step alone).
check "go vet ./..." go vet ./...
# Tests of ./cli that run in its plain build only, in the "cli processes"
# check below. Each starts the test binary as processes and checks them from
# outside; under -race those processes take several times longer, and the Go
# code they run runs under -race in other tests:
#   TestFleetProcesses, TestFleetQueriesOnWorkers, TestFleetRuns,
#     TestFleetWorkerKilled, TestFleetWorkerPartitioned: a control plane and
#     workers as processes; the fleet's code runs under -race in its package
#     tests (runtime/fleet, runtime/fleetlaunch, flight).
#   TestCatalogDamageCorpus: 176 processes of one command each (branch ls,
#     log, table ls, doctor) on damaged catalog files, two minutes of the
#     race step; a one-command process has nothing running beside it to
#     race with, the same commands run in-process under -race in TestGolden
#     and TestDoctor, and catalog/bolt's TestDamagedFiles opens the damaged
#     files under -race.
#   TestServeRoleFlags: processes that stop at a usage error of serve's flags.
plain_cli='TestFleetProcesses|TestFleetQueriesOnWorkers|TestFleetRuns|TestFleetWorkerKilled|TestFleetWorkerPartitioned|TestCatalogDamageCorpus|TestServeRoleFlags'
# TestRunExitsAtItsSummary has a check of its own in the plain build, where
# its 0.5 s bound holds (the race build allows 2 s, and took a minute on a
# loaded machine); the run it makes as a process is one that
# TestPipelineEndToEnd makes in-process under -race, and envcache's tests
# install packages into an empty cache under -race.
# TestCrashSafety (./catalog) likewise: its plain check below kills 200
# children; under -race it killed 25 race-built children (38 s, most of
# catalog's race time) whose race reports nothing read, and its own
# goroutine only checks the store after each kill.
# TestServeLoad and TestServeFaults likewise (their check below runs them
# in full: 30 s of load, 100 kills): the server they load and kill is a
# process of the plain build; under -race they ran 10 s and 10 kills, 23 s
# of the cli's race time, which is the step's longest.
race_skip="^(${plain_cli}|TestRunExitsAtItsSummary|TestCrashSafety|TestServeLoad|TestServeFaults)\$"
# The cli tests' lakehouse processes run the package's plain test binary
# (LAKEHOUSE_TEST_CLI_BIN, see cli/pipeline_test.go): a race-built process
# runs several times slower, and the step starts hundreds; the tests themselves, and every command
# in-process, run under -race. The plain checks below share that binary.
cli_test=$(testbin cli)
# The Python tests (pytest) run in the background from here on, beside
# the race step: their Java engines and servers starting leave cores idle
# (a third, for 39 s, when they ran alone), and so do the race step's
# first seconds (go list, the binaries' up-to-date check) and its last
# ones (the cli's tests alone). Their output follows at the end.
if [[ -d python/tests ]]; then
	check_bg "pytest python/tests" "$PYTHON" -m pytest -q python/tests
fi
# Three test binaries at a time (-p 3) on two cores: many packages' tests
# wait on processes (pip, Python, MinIO, containerd) part of the time, and
# with the default of one per core the step was 87 % busy: 398 s, against
# 302 s with -p 3 on this 2-core machine.
check "go test -race ./..." race_tests
# A run's process exits within 0.5 s of its summary (skipped by the race
# step, see race_skip): here, alone, before the checks below share the
# cores.
check "run exits at its summary (plain build)" inpkg cli "$cli_test" -test.count=1 -test.timeout 15m -test.run '^TestRunExitsAtItsSummary$'
# The cli tests of the plain build only (plain_cli above): a control plane
# and workers as processes (joins, losses, restarts, pauses, bad joins,
# queries placed on workers), commands on damaged catalog files, serve's
# refused flags. It waits much of the time (heartbeats, timeouts, processes
# starting), so it runs in the background from here on, beside the S3,
# crash-safety and run-crash checks and the fuzzing, and so does the serve
# check from the run-crash check on: alone,
# the fleet check (147 s of CPU in 176 s), the run-crash check (96 s of
# CPU in 134 s) and the serve check (159 s of CPU in 106 s) each left
# cores idle (processes starting and being killed, heartbeats, restarts);
# side by side they keep both cores busy. The fuzzing is bounded by its
# time budget, and fuzzes less meanwhile. Each of these checks keeps to
# its own folders, processes and ports, and the serve check's bounds are
# on failed requests and memory, not on latency.
check_bg "cli processes: fleet, damaged catalogs, serve flags (plain build)" inpkg cli "$cli_test" -test.count=1 -test.timeout 15m -test.run "^(${plain_cli})\$"
# The query suite again, on an S3 warehouse (a MinIO for the package,
# a prefix of it for each test), through the scan cache; and the catalog's and the Iceberg format's tests
# again, their tables on an S3 warehouse (each package's
# testwarehouse_test.go lists the local-only tests, and why); the
# crash-safety test, local-only, has its own step below. The three
# packages run side by side.
check "runtime/query, catalog and catalog/iceberg on an S3 warehouse" s3_tests
# The race build runs the crash-safety test at 25 kill points (children are
# slow under -race); this plain run does the full 200.
# (in two stores at once)
check "crash safety, 200 SIGKILL points" inpkg catalog "$(testbin catalog)" -test.count=1 -test.timeout=30m -test.run '^TestCrashSafety$'
# lakehouse serve under 50 clients for 30 s, and killed at 100 random
# moments of that load.
check_bg "serve load and faults, 100 SIGKILL points of lakehouse serve" inpkg cli "$cli_test" -test.count=1 -test.timeout 20m -test.run '^(TestServeLoad|TestServeFaults)$'
# SIGKILL of `lakehouse run` at random moments (LAKEHOUSE_RUN_CRASH_POINTS,
# 30 when the test runs alone, 200 here, in two lakehouses at once):
# skipped under -race, where each run takes several times longer.
export LAKEHOUSE_RUN_CRASH_POINTS=${LAKEHOUSE_RUN_CRASH_POINTS:-200}
check "run crash safety, 200 SIGKILL points of lakehouse run" inpkg cli "$cli_test" -test.count=1 -test.timeout 30m -test.run '^TestRunCrashSafety$'

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
	# The background link of this package's binary (fuzz_prebuild) is
	# awaited; if it failed, testbin links again here and shows why.
	while [[ ! -e $(prebuilt "$dir") ]] && kill -0 "$prebuild_pid" 2>/dev/null; do
		sleep 0.2
	done
	bin=$(testbin "$dir" -fuzz .) || return 1
	for attempt in 1 2; do
		out=$(inpkg "$dir" "$bin" -test.run '^$' -test.fuzz "^${target}\$" -test.fuzztime "$fuzztime" -test.parallel "$fuzz_workers" \
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

# prebuilt DIR: the file that says fuzz_prebuild is done with DIR.
prebuilt() { echo "$bindir/$(echo "$1" | tr -c 'A-Za-z0-9\n' '_').prebuilt"; }

# fuzz_prebuild DIR...: links each package's fuzz-instrumented test binary
# in turn, quietly, in the background: a package's link (5-20 s for the
# five that link DuckDB) overlaps the fuzzing of the targets before it
# instead of adding to the step's time.
fuzz_prebuild() {
	local dir
	for dir in "$@"; do
		testbin "$dir" -fuzz . >/dev/null 2>&1
		touch "$(prebuilt "$dir")"
	done
}

# The fuzzing budget is shared: FUZZ_BUDGET seconds over all targets, at
# least 2 s each (FUZZTIME, if set, is each target's time instead). Each
# target also spends a second or more replaying its corpus first.
mapfile -t targets < <(fuzz_targets)
mapfile -t fuzz_dirs < <(printf '%s\n' "${targets[@]}" | cut -d' ' -f1 | uniq)
fuzz_prebuild "${fuzz_dirs[@]}" &
prebuild_pid=$!
# 50 s: 2 s a target after its corpus replay (3 s at 70, ten seconds more
# of the whole command's time, which the fuzzing ends); a longer search is
# FUZZ_BUDGET=600 ./scripts/test.sh, or go test -fuzz on one target.
budget=${FUZZ_BUDGET:-50}
each=$((${budget%s} / (${#targets[@]} > 0 ? ${#targets[@]} : 1)))
fuzztime=${FUZZTIME:-$((each > 2 ? each : 2))s}
fuzzcache="$(go env GOCACHE)/fuzz"
# The targets run in lanes, one per core, each lane fuzzing every
# lane-th target in turn with one worker: a target spends a second or two
# starting and replaying its corpus on one core whatever its workers, so
# one target at a time with a worker per core left a core idle that long
# (21 targets: 88 s, against about half that in two lanes). Each target's
# output is printed, in order, once every lane is done.
fuzz_workers=1
fuzz_lanes=$(nproc)
# fuzz_lane LANE: fuzzes the targets of lane LANE, keeping each one's
# output and "rc seconds" aside by its index.
fuzz_lane() {
	local lane=$1 i dir target start
	for i in "${!targets[@]}"; do
		((i % fuzz_lanes == lane)) || continue
		read -r dir target <<<"${targets[$i]}"
		[[ -n $target ]] || continue
		start=$SECONDS
		fuzz "$dir" "$target" >"$bindir/fuzz$i.log" 2>&1
		echo "$? $((SECONDS - start))" >"$bindir/fuzz$i.rc"
	done
}
echo
echo "fuzzing ${#targets[@]} targets for $fuzztime each, $fuzz_lanes at a time"
for ((lane = 0; lane < fuzz_lanes; lane++)); do
	fuzz_lane "$lane" &
	lane_pids+=($!)
done
wait "${lane_pids[@]}"
lane_pids=()
for i in "${!targets[@]}"; do
	read -r dir target <<<"${targets[$i]}"
	[[ -n $target ]] || continue
	echo
	echo "==> fuzz $target (./$dir)"
	cat "$bindir/fuzz$i.log" 2>/dev/null
	read -r rc took <"$bindir/fuzz$i.rc" 2>/dev/null || { rc=1; took=0; echo "(the target did not run)"; }
	account "fuzz $target (./$dir)" "$rc" "$took"
done

wait_bg

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
