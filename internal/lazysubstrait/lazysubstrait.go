// Package lazysubstrait defers the parsing of Substrait's function catalog
// from the start of every lakehouse process to its first use, which no
// lakehouse command makes today.
//
// iceberg-go's table/substrait package asks substrait-go for its default
// extension collection in a package variable, so every process that links
// iceberg-go parses some 30 YAML files as it starts: 85–90 ms of CPU and
// 32 MB of garbage, three quarters of the time of a command such as
// `lakehouse branch ls`. lakehouse uses iceberg-go for metadata, manifests
// and commits, and DuckDB for data; the catalog is needed only by
// iceberg-go's Arrow scans and row-filter deletes (table.Scan's
// ToArrowRecords and ToArrowTable, Transaction.Delete and Overwrite with a
// filter), which lakehouse does not call.
//
// This package swaps substrait-go's loader (a package variable, reached
// with go:linkname) during initialization: the call from iceberg-go's
// package initialization gets an empty collection, into which iceberg-go
// loads its own functions; every other call of
// extensions.GetDefaultCollection fills that same collection with the
// default catalog first, once. Call Load before using iceberg-go's
// substrait paths directly (they hold the collection, not the loader).
//
// Go initializes packages in import-path order, each once its imports are
// done (the Go specification, since Go 1.21). This package imports
// substrait-go's extensions package and nothing else that comes later, so
// it runs right after it: before substrait-go's expr package, which sorts
// after github.com/lakehouse-dev and which iceberg-go's substrait package
// imports. A test (Deferred) checks that it did.
package lazysubstrait

import (
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"strings"
	"sync"
	_ "unsafe" // go:linkname

	"github.com/substrait-io/substrait"
	"github.com/substrait-io/substrait-go/v8/extensions"
)

//go:linkname defaultCollection github.com/substrait-io/substrait-go/v8/extensions.getDefaultCollectionOnce
var defaultCollection func() (*extensions.Collection, error)

var (
	// collection is what every caller of the loader gets.
	collection = new(extensions.Collection)
	// mu guards handedOut, which is set when iceberg-go's initialization
	// got collection before anything was loaded into it.
	mu        sync.Mutex
	handedOut bool
	// load fills collection with Substrait's default catalog, once.
	load = sync.OnceValues(func() (*extensions.Collection, error) {
		return collection, loadDefaults(collection)
	})
)

// icebergInit is the function that initializes the package variables of
// iceberg-go's substrait package, the one caller that gets the collection
// before the catalog is in it.
const icebergInit = "github.com/apache/iceberg-go/table/substrait.init"

func init() {
	// Load of a file without a URN refuses it having made the
	// collection's maps, which its lookups need.
	if err := collection.Load("", strings.NewReader("{}")); err == nil {
		panic("lazysubstrait: substrait-go loaded an extension file without a URN")
	}
	// The variable is set once, here, and never again: callers on other
	// goroutines only ever read it.
	defaultCollection = func() (*extensions.Collection, error) {
		mu.Lock()
		first := !handedOut && calledBy(icebergInit)
		handedOut = handedOut || first
		mu.Unlock()
		if first {
			return collection, nil
		}
		return load()
	}
}

// calledBy reports whether fn is among the callers of the loader.
func calledBy(fn string) bool {
	var pcs [16]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		f, more := frames.Next()
		if f.Function == fn {
			return true
		}
		if !more {
			return false
		}
	}
}

// Load fills the collection iceberg-go holds with Substrait's default
// catalog, if not done yet. It is safe for concurrent use.
func Load() error {
	_, err := load()
	return err
}

// Deferred reports whether the start of the process skipped the catalog:
// the collection was handed out empty, at initialization, to iceberg-go.
func Deferred() bool {
	mu.Lock()
	defer mu.Unlock()
	return handedOut
}

// loadDefaults loads every extension file Substrait ships into c, under the
// URI substrait-go gives it, leaving out the one it does not support.
func loadDefaults(c *extensions.Collection) error {
	files := substrait.GetSubstraitExtensionsFS()
	entries, err := files.ReadDir("extensions")
	if err != nil {
		return fmt.Errorf("substrait extensions: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "unknown.yaml" {
			continue
		}
		if err := loadFile(c, files, e.Name()); err != nil {
			return err
		}
	}
	return nil
}

func loadFile(c *extensions.Collection, files fs.FS, name string) error {
	f, err := files.Open(path.Join("extensions", name))
	if err != nil {
		return err
	}
	defer f.Close()
	uri := extensions.SubstraitDefaultURIPrefix + name
	if c.URILoaded(uri) {
		return nil
	}
	if err := c.Load(uri, f); err != nil {
		return fmt.Errorf("substrait extension %s: %w", name, err)
	}
	return nil
}
