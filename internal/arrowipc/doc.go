// Package arrowipc owns the Arrow IPC files of lakehouse: the tables a
// pipeline passes between its models (scans of catalog tables, model
// outputs, filtered inputs, usually in /dev/shm) and the files `table
// import` reads. It writes them (Write), opens and validates them (Open,
// File.Batch), memory-maps them, and fingerprints their data
// (File.Fingerprint). catalog/iceberg imports them as tables and
// runtime/pipeline reads them; neither parses or maps a file itself.
//
// # Reading
//
// Open maps a file read-only and reads it with arrow-go's IPC reader. A
// file of plain columns is read in place (batches point into the
// mapping, so reading copies nothing); a file with dictionaries, string
// views, compressed batches or big-endian data is read with a reader that
// copies one batch at a time into the allocator (see fileLayout.inPlace
// for why). File.Detach copies an array out of the mapping for whoever
// must keep it past Close or read it outside Guard.
//
// # Invariants
//
// A corrupt file is an error, never a crash. arrow-go trusts what it
// reads, and some of what it then does (an allocation of terabytes, a
// slice of billions of elements, a read past a buffer on a kernel's
// goroutine or in DuckDB's C code) no recover catches. So before arrow-go
// parses anything, readLayout checks the footer's flatbuffers with
// bounds-checked accessors (fb.go) and the schema (layout.go), and
// checkMessage checks each dictionary and record batch message: every
// field node and buffer lies within its body and holds what its node
// needs, compressed buffers decompress to at most a limit (half the
// memory available, at most 16 GiB) and their LZ4 and zstd frames can
// decompress to what they claim (codec.go). File.Batch then validates
// every batch it hands on (offsets, bitmaps against null counts, views,
// decimals against their precision, dictionary indices; validate.go), and
// File.CheckDecodedSize bounds what a dictionary-encoded column decodes
// to. What arrow-go still panics on is recovered: reads run under
// File.Guard, and a mapped file that is truncated while it is read makes
// the next access fault, which debug.SetPanicOnFault turns into a panic.
//
// Errors are classified: a file that is not an Arrow IPC file, or a
// corrupt one, is InvalidArgument (with Hint where the format is wrong);
// one whose size changed while it was read is Conflict.
//
// Write makes a file appear under its name only when it is complete.
//
// A file read in place is sent over Flight message by message as it lies
// in the mapping (File.Message), and a received Arrow IPC stream is written
// into a file as it arrives (StreamFile): its bodies are not decoded, only
// their headers checked against the schema as they come, and the file
// once written has its footer, headers and offsets checked, so that a
// peer cannot make it write a file that Open or Batch would crash on.
//
// The fingerprint is a function of the table only: its schema (column
// names and types) and the multiset of its rows, each encoded in a
// canonical binary form. Batch boundaries, row order and dictionary
// layouts do not change it; any other value, a NULL for a value, or a
// value moved between rows, columns or list elements does (up to the
// odds of a 128-bit collision). The pipeline's result cache keys on it.
//
// # Caveats
//
// Union and run-end encoded columns are not read (Batch fails on them),
// nor dictionary-encoded nested values. Floats are fingerprinted by their
// bits (-0.0 and 0.0 differ, as do NaNs of other payloads), fixed-width
// values in the machine's byte order, so fingerprints compare only
// between machines of one byte order. A batch read in place that is
// handed to code outside Guard (DuckDB loading a pipeline input reads it
// in C) crashes the process if the file is truncated meanwhile: pipeline
// files are read-only once written, and nothing truncates them. Without
// mmap (not unix), Open reads the whole file into memory.
package arrowipc
