package duckdb

/*
#include <stdlib.h>
#include <stdint.h>
struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream*, void*);
  int (*get_next)(struct ArrowArrayStream*, void*);
  const char* (*get_last_error)(struct ArrowArrayStream*);
  void (*release)(struct ArrowArrayStream*);
  void* private_data;
};
*/
import "C"

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	bindings "github.com/duckdb/duckdb-go-bindings"
)

// LoadArrow creates the table schema.name holding every row of r (which it
// reads to the end), through DuckDB's Arrow scan: batches go from Arrow
// memory (e.g. a memory-mapped IPC file) straight into DuckDB's columnar
// storage, with no file in between. It must run before Lock.
//
// The rows are copied once into the table rather than scanned through a
// view, because an Arrow stream can be read only once and a query may scan
// its input several times (self-joins, CTEs used twice). Cancelling ctx
// interrupts the copy.
func (d *DB) LoadArrow(ctx context.Context, schema, name string, r array.RecordReader) error {
	if d.locked {
		return fmt.Errorf("duckdb: LoadArrow after Lock")
	}
	if schema != "" {
		if err := d.exec("CREATE SCHEMA IF NOT EXISTS " + Ident(schema)); err != nil {
			return err
		}
	}
	stream := C.calloc(1, C.sizeof_struct_ArrowArrayStream)
	defer C.free(stream)
	cs := (*cdata.CArrowArrayStream)(stream)
	cdata.ExportRecordReader(r, cs)
	defer cdata.ReleaseCArrowArrayStream(cs)
	view := "__lakehouse_arrow_in"
	if bindings.ArrowScan(d.conn, view, bindings.ArrowStream{Ptr: unsafe.Pointer(stream)}) == bindings.StateError {
		return fmt.Errorf("duckdb: registering Arrow input %s", name)
	}
	target := Ident(name)
	if schema != "" {
		target = Ident(schema) + "." + target
	}
	done := make(chan struct{})
	d.interruptOnCancel(ctx, done)
	err := d.exec("CREATE TABLE " + target + " AS SELECT * FROM " + Ident(view))
	close(done)
	err = ctxErr(ctx, err)
	if derr := d.exec("DROP VIEW IF EXISTS " + Ident(view)); err == nil && derr != nil {
		err = derr
	}
	return err
}
