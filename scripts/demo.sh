#!/usr/bin/env bash
# demo.sh: a short tour of lakehouse on a fresh, temporary data directory.
#
# Loads the sample transactions on a branch, merges them into main, imports
# more on a second branch, shows the diff, merges again, prints the log and
# the table, queries it (also as it was before the second import), and
# plans the sample pipeline. Uses bin/lakehouse (built if missing; LAKEHOUSE=path picks
# another binary). KEEP=1 keeps the data directory.
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
unset LAKEHOUSE_ADDR
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
run run -p testdata/pipelines/sample -r main --dry-run
printf '\ndemo finished\n'
