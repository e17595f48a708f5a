package query

import (
	"context"
	"os"
	"strings"
	"sync"

	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// blockingWords are the SQL keywords of operators that work on all their
// input before the first row comes out (or, for joins, build a side
// first): a query with one of them, or with an aggregate function, gets
// all the cores.
var blockingWords = map[string]bool{
	"group": true, "order": true, "join": true, "distinct": true, "over": true, "window": true,
	"qualify": true, "having": true, "union": true, "intersect": true, "except": true,
	"pivot": true, "unpivot": true, "recursive": true,
}

var (
	aggregatesOnce sync.Once
	aggregates     map[string]bool
)

// threads is the DuckDB thread count for plan's SQL run by Execute: 0
// (the DB's own: LAKEHOUSE_DUCKDB_THREADS, else one per core), or
// duckdb.StreamThreads when the query only streams rows (onlyStreams).
func threads(sql string) int {
	if os.Getenv(duckdb.EnvThreads) != "" {
		return 0
	}
	aggregatesOnce.Do(func() {
		if p, err := Parser(); err == nil {
			aggregates, _ = p.AggregateFunctions(context.Background())
		}
	})
	if aggregates == nil || !onlyStreams(sql, aggregates) {
		return 0
	}
	return duckdb.StreamThreads()
}

// onlyStreams reports whether sql looks like a query whose rows stream
// out as they are read: no keyword of blockingWords and no call of a
// function in aggs, outside string literals, quoted names and comments.
// A plain word check: a false negative only leaves the query all the
// cores.
func onlyStreams(sql string, aggs map[string]bool) bool {
	s := strings.ToLower(sql)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return false
			}
			i += end + 2
		case strings.HasPrefix(s[i:], "--"):
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				return true
			}
			i += end
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return false
			}
			i += end + 4
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			w := s[i:j]
			if blockingWords[w] {
				return false
			}
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
				k++
			}
			if k < len(s) && s[k] == '(' && aggs[w] {
				return false
			}
			i = j
		default:
			i++
		}
	}
	return true
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80
}
