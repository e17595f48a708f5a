#!/usr/bin/env bash
# demo.sh: a short tour of lakehouse on a fresh, temporary data directory.
#
# Loads the sample transactions on a branch, merges them into main, imports
# more on a second branch, shows the diff, merges again, prints the log and
# the table, queries it (also as it was before the second import), then runs
# the sample pipeline (testdata/pipelines/sample: pandas 2 on Python 3.11,
# pandas 1.5 on Python 3.10, a SQL model and an expectation) on a branch,
# queries its result, reruns it from the result cache and merges it into
# main. Uses bin/lakehouse (built if missing; LAKEHOUSE=path picks another
# binary). KEEP=1 keeps the data directory. Python packages are cached in
# ~/.cache/lakehouse/envcache (LAKEHOUSE_ENVCACHE_DIR), so only the first
# demo on a machine downloads pandas.
set -euo pipefail
cd "$(dirname "$0")/.."

LAKEHOUSE=${LAKEHOUSE:-./bin/lakehouse}
if [[ ! -x $LAKEHOUSE ]]; then
	echo "building $LAKEHOUSE"
	go build -tags duckdb_arrow -o "$LAKEHOUSE" .
fi

LAKEHOUSE_DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/lakehouse-demo.XXXXXX")
export LAKEHOUSE_DATA_DIR
export LAKEHOUSE_USER=${LAKEHOUSE_USER:-demo}
export LAKEHOUSE_ENVCACHE_DIR=${LAKEHOUSE_ENVCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse/envcache}
if [[ ${KEEP:-} == 1 ]]; then
	echo "data directory: $LAKEHOUSE_DATA_DIR (kept)"
else
	trap 'rm -rf "$LAKEHOUSE_DATA_DIR"' EXIT
fi

# run prints a command, then runs it.
run() {
	local line="lakehouse" arg
	for arg in "$@"; do
		if [[ $arg == *[[:space:]]* ]]; then
			line+=" \"$arg\""
		else
			line+=" $arg"
		fi
	done
	printf '\n$ %s\n' "$line"
	"$LAKEHOUSE" "$@"
}

run checkout -b demo.setup
run namespace create sales
run table import sales.transactions --from testdata/sample/transactions
run merge demo.setup --into main
run checkout -b demo.more --from-ref main
run table import sales.transactions --from testdata/sample/transactions_more
run diff main demo.more
run merge demo.more --into main
run log main -n 5
run table get sales.transactions -r main
run tag create v1 --from-ref main
run query "SELECT country, count(*) AS orders, round(sum(usd), 2) AS usd FROM sales.transactions GROUP BY country ORDER BY usd DESC" -r main
run query "SELECT count(*) AS rows_before_the_second_import FROM sales.transactions" -r "main@$("$LAKEHOUSE" log main -n 2 -O json | sed -n 's/.*"id": "\([0-9a-f]\{12\}\).*/\1/p' | tail -1)"
run query "SELECT * FROM sales.transactions WHERE country = 'IT'" -r v1 --explain
run checkout -b demo.report --from-ref main
run run -p testdata/pipelines/sample --dry-run
run run -p testdata/pipelines/sample --param min_usd=10
run query "SELECT * FROM sales.country_share ORDER BY share DESC"
run run -p testdata/pipelines/sample --param min_usd=10 --preview off
run runs ls
run runs get "$("$LAKEHOUSE" runs ls -O json | sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p' | head -1)"
run merge demo.report --into main
run query "SELECT country, round(usd, 2) AS usd, round(share, 3) AS share FROM sales.country_share" -r main
printf '\ndemo finished\n'
