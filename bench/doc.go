// Package bench measures how lakehouse hands a model's output to the Python
// functions that read it, against reading the same table from Parquet.
//
// A parent model's output is written once as an Arrow IPC file in a per-run
// folder under /dev/shm, and every child function memory-maps it:
//
//	pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
//
// The benchmarks write one table both ways (the IPC file under
// /dev/shm/lakehouse-bench-<pid>/, the same rows as snappy Parquet under
// os.TempDir()), start real Python children that load it, and print a table
// of ours against the Parquet baseline measured in the same run:
//
//   - BenchmarkHandoff1GB: time for a child to have its input table
//     (perf_counter around the read inside the child), median over several
//     children, and the ratio to pyarrow.parquet.read_table.
//   - BenchmarkFanOutPSS: ten children hold the table at once; the sum of
//     their proportional set sizes (/proc/PID/smaps_rollup Pss) shows that the
//     mapped file is one physical copy, where ten Parquet readers hold ten.
//
// Run them with
//
//	GOFLAGS=-tags=duckdb_arrow go test -run '^$' -bench . -benchtime 1x ./bench
//
// TestHandoffSmall runs both on a ~10 MB table so plain `go test ./...`
// exercises the same code. Every child checks the row count and the sum of
// every column against the values the generator computed.
//
// Python: LAKEHOUSE_BENCH_PYTHON if set, else the first python3 on PATH that
// imports pyarrow; the children run that interpreter's real binary (not a
// pyenv shim). Without pyarrow the benchmarks fail and say what to install.
//
// Nothing is left behind: datasets are removed when a test or the process
// ends (also on a panic, SIGINT or SIGTERM), folders of earlier processes that
// died are swept at start, and every child is killed by PID and waited; the
// children also get SIGKILL if this process dies.
package bench
