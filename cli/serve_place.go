package cli

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// Queries across a fleet: the control plane plans a query and places it
// on the least loaded worker that reads its warehouse (placer); the
// worker runs the signed plan over its own copy of the data files
// (workerQueries). See flight/server_place.go for the protocol.

// placer places a control plane's queries on its workers.
type placer struct {
	reg        *fleet.Registry
	placements *fleet.Placements
	local      *localQueries
	// scans plan scans whose files are named as the worker reads them:
	// warehouse URIs for a remote warehouse, local paths for a file://
	// one (the control plane fetches nothing for a placed query).
	scans catalog.TableScanner
	// warehouse is the URI of the control plane's warehouse.
	warehouse string
}

var _ flight.Placer = (*placer)(nil)

// setupPlacer makes the control plane place the queries of clients that
// follow locations.
func (e *Env) setupPlacer(ctx context.Context, reg *fleet.Registry, opts *flight.Options) error {
	local, ok := opts.Queries.(*localQueries)
	if !ok {
		return nil
	}
	ws, err := e.resolveWarehouse()
	if err != nil {
		return err
	}
	storage, err := e.openWarehouse(ctx, ws)
	if err != nil {
		return err
	}
	scans := local.scans
	if _, isLocal := storage.(warehouse.LocalPather); !isLocal {
		if scans, err = iceberg.New(iceberg.Options{Storage: storage, Fetcher: uriFetcher{storage}}); err != nil {
			return err
		}
	}
	opts.Place = &placer{reg: reg, placements: fleet.NewPlacements(), local: local, scans: scans, warehouse: storage.Root()}
	return nil
}

// uriFetcher names a remote data file by its warehouse URI instead of
// fetching it: the worker the query is placed on fetches it.
type uriFetcher struct{ storage warehouse.Storage }

func (f uriFetcher) Materialize(_ context.Context, key string, _ []string) (string, error) {
	return f.storage.URI(key), nil
}

// Place implements flight.Placer.
func (p *placer) Place(ctx context.Context, q flight.QueryCommand, user string) (*flight.Placement, error) {
	avoid := map[string]bool{}
	for _, a := range q.Avoid {
		if target, _, err := flight.ParseAddr(a); err == nil {
			avoid[target] = true
		}
	}
	w, ok := p.placements.LeastLoaded(p.reg.Alive(ctx), func(w fleet.WorkerInfo) bool {
		return w.Warehouse == p.warehouse && !avoid[w.Addr]
	})
	if !ok {
		return nil, nil
	}
	req, err := p.local.request(q)
	if err != nil {
		return nil, err
	}
	plan, err := query.Plan(ctx, p.local.svc, p.scans, req)
	if err != nil {
		return nil, err
	}
	pq := flight.PlacedQuery{SQL: plan.SQL, Namespace: string(plan.Namespace), Warehouse: p.warehouse,
		Tables: make([]flight.PlacedTable, len(plan.Tables)), Worker: w.Name, Lease: w.Lease}
	for i, t := range plan.Tables {
		pq.Tables[i] = flight.PlacedTable{Namespace: string(t.Ident.Namespace), Name: t.Ident.Name, Schema: t.Schema,
			SchemaEvolved: t.SchemaEvolved, Columns: t.Columns, Files: t.Files}
	}
	p.placements.Placed(w.Name, time.Now())
	return &flight.Placement{Addr: w.Addr, Key: p.reg.TicketKey(), Query: pq}, nil
}

// workerQueries runs the queries placed on a worker, reading data files
// from the warehouse of its --warehouse.
type workerQueries struct {
	name string
	// member is the worker's membership, once it joined.
	member atomic.Pointer[fleet.Member]
	// root is the warehouse URI ("" without --warehouse); storage and
	// fetch read a remote one through the worker's scan cache.
	root    string
	storage warehouse.Storage
	fetch   iceberg.Fetcher
	running atomic.Int64
}

var _ flight.PlacedQueries = (*workerQueries)(nil)

// newWorkerQueries opens the worker's --warehouse: an s3:// one with the
// worker's own S3 settings (its scan cache comes with openCache), or a
// file:// one that must exist here (a shared file system). It writes
// nothing.
func (e *Env) newWorkerQueries(ctx context.Context, name string) (*workerQueries, error) {
	wq := &workerQueries{name: name}
	uri, err := e.warehouseFlag()
	if err != nil || uri == "" {
		return wq, err
	}
	loc, err := warehouse.ParseLocation(uri)
	if err != nil {
		return nil, err
	}
	wq.root = uri
	if loc.Scheme == "file" {
		if st, err := os.Stat(loc.Path); err != nil || !st.IsDir() {
			return nil, errdefs.WithHint(errdefs.ErrInvalidArgument,
				"give the control plane's warehouse as this machine sees it (a shared file system), or an s3:// warehouse",
				"worker --warehouse %s: no such directory on this machine", uri)
		}
		return wq, nil
	}
	if wq.storage, err = warehouse.Open(ctx, warehouse.Config{URI: uri, S3: warehouse.S3Options{Endpoint: e.s3Endpoint("")}}); err != nil {
		return nil, err
	}
	return wq, nil
}

// openCache opens the scan cache of a remote warehouse in dir (the
// worker's folder of its data dir, once the worker holds it).
func (wq *workerQueries) openCache(dir string) error {
	if wq.storage == nil {
		return nil
	}
	cache, err := scancache.Open(filepath.Join(dir, "cache", "scan"), 0)
	if err != nil {
		return err
	}
	// As in embedded mode: entries stay while the query engine reads them.
	cache.KeepRecent(10 * time.Minute)
	wq.fetch = &iceberg.CacheFetcher{Cache: cache, Source: wq.storage}
	return nil
}

// Ticket implements flight.PlacedQueries.
func (wq *workerQueries) Ticket() (name, lease string, key []byte, ok bool) {
	m := wq.member.Load()
	if m == nil {
		return "", "", nil, false
	}
	l := m.Lease()
	key, err := hex.DecodeString(l.TicketKey)
	return wq.name, l.ID, key, err == nil && len(key) > 0
}

// RunPlaced implements flight.PlacedQueries.
func (wq *workerQueries) RunPlaced(ctx context.Context, p flight.PlacedQuery) (array.RecordReader, func() error, error) {
	if p.Warehouse != wq.root {
		reads := wq.root
		if reads == "" {
			reads = "none (no --warehouse)"
		}
		return nil, nil, errdefs.WithHint(errdefs.ErrFailedPrecondition, "start the worker with --warehouse "+p.Warehouse,
			"placed query %s reads warehouse %s, and this worker reads %s", p.ID, p.Warehouse, reads)
	}
	plan := &plansql.Plan{SQL: p.SQL, Namespace: catalog.Namespace(p.Namespace), Tables: make([]*plansql.TableScan, len(p.Tables))}
	for i, t := range p.Tables {
		files := make([]string, len(t.Files))
		for j, f := range t.Files {
			path, err := wq.localFile(ctx, f, t.Columns)
			if err != nil {
				return nil, nil, err
			}
			files[j] = path
		}
		plan.Tables[i] = &plansql.TableScan{Ident: catalog.TableIdent{Namespace: catalog.Namespace(t.Namespace), Name: t.Name},
			Schema: t.Schema, SchemaEvolved: t.SchemaEvolved, Columns: t.Columns, Files: files}
	}
	res, err := query.Execute(ctx, plan)
	if err != nil {
		return nil, nil, err
	}
	wq.running.Add(1)
	return res.Reader, func() error {
		defer wq.running.Add(-1)
		return res.Close()
	}, nil
}

// localFile is a local path with the content of a placed query's data
// file f: fetched into the scan cache for a remote warehouse, the file
// itself for a file:// one.
func (wq *workerQueries) localFile(ctx context.Context, f string, columns []string) (string, error) {
	if wq.storage == nil {
		if _, err := os.Stat(f); err != nil {
			return "", errdefs.WithHint(errdefs.ErrFailedPrecondition, "share the warehouse's file system with the worker, or use an s3:// warehouse",
				"data file %s is not readable on worker %s: %v", f, wq.name, err)
		}
		return f, nil
	}
	key, ok := wq.storage.Key(f)
	if !ok {
		return "", errdefs.New(errdefs.ErrInvalidArgument, "data file %s is outside the warehouse %s", f, wq.root)
	}
	return wq.fetch.Materialize(ctx, key, columns)
}

// load is the worker's load for its heartbeats.
func (wq *workerQueries) load() int { return int(wq.running.Load()) }
