package duckdb

import (
	"sync"
	"time"
)

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Options are those of every DB the pool opens. OutputDir must be
	// empty: an output directory belongs to one query.
	Options Options
	// Size is how many DBs are kept open ahead of demand; 0 means 2.
	Size int
	// Idle is how long opened DBs wait for a query before the pool closes
	// them (and opens none until queries come again); 0 means 30s.
	Idle time.Duration
	// Keep is how many prepared DBs (see Put) are kept for queries that
	// prepare them alike; 0 means 4.
	Keep int
}

// Pool keeps a few fresh DBs opened ahead of demand, so that a query does
// not wait the ~10 ms DuckDB takes to open. Isolation is the same as with
// Open: each DB is opened exactly as Open(Config.Options) does (same
// limits, own spill directory), handed to one caller, never returned and
// never reused by Get; the caller registers its views, Locks it and
// Closes it.
//
// A DB whose query ended cleanly may come back with Put, under a key
// naming everything its caller prepared in it (schema, views, the files
// the sandbox allows): Take hands it to the next query with the same key,
// which then skips the ~7 ms of CPU DuckDB takes to open and the views
// and the lock. A query is one SELECT, which leaves a locked DB as it
// found it, so the next query sees what a fresh DB prepared alike would
// show (and DuckDB's caches of those same files).
//
// The pool starts opening ahead only once a second DB is asked for, so a
// process that runs one query (a CLI command) opens no spare one; the DBs
// are opened by one background goroutine that exits when the pool is
// full. Close the pool when done: it closes the DBs still waiting. A Pool
// is safe for concurrent use.
type Pool struct {
	cfg PoolConfig

	mu      sync.Mutex
	ready   []*DB
	kept    []keptDB // oldest first
	gets    int      // Gets since the pool was last idle
	filling bool     // the filling goroutine runs
	closed  bool
	idle    *time.Timer
	wg      sync.WaitGroup
	// changed is signalled when a DB is ready or filling stops.
	changed *sync.Cond
}

// keptDB is a prepared DB waiting for a query with its key.
type keptDB struct {
	key string
	db  *DB
}

// NewPool returns a pool; it opens nothing yet.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.Size <= 0 {
		cfg.Size = 2
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 30 * time.Second
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 4
	}
	p := &Pool{cfg: cfg}
	p.changed = sync.NewCond(&p.mu)
	return p
}

// Get returns a fresh DB: one opened ahead if there is one, else the one
// being opened (it is partly open already, and two DuckDBs opening at once
// would share the CPU), else one opened now. Errors are Open's. After
// Close it opens one now.
//
// The pool is topped up when the DB is closed, after its query, so that
// opening the next one does not take CPU from the query; only a pool left
// empty is refilled at once.
func (p *Pool) Get() (*DB, error) {
	p.mu.Lock()
	var d *DB
	if p.closed {
		p.mu.Unlock()
		return Open(p.cfg.Options)
	}
	p.gets++
	for len(p.ready) == 0 && p.filling && !p.closed {
		p.changed.Wait()
	}
	if len(p.ready) > 0 {
		d = p.ready[0]
		p.ready = p.ready[1:]
	}
	if len(p.ready) == 0 {
		p.fillLocked()
	}
	p.mu.Unlock()
	var err error
	if d == nil {
		if d, err = Open(p.cfg.Options); err != nil {
			return nil, err
		}
	}
	d.onClose = p.topUp
	return d, nil
}

// Take returns a DB that Put kept under key, or nil if none waits.
func (p *Pool) Take(key string) *DB {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.kept) - 1; i >= 0; i-- {
		if k := p.kept[i]; k.key == key {
			p.kept = append(p.kept[:i], p.kept[i+1:]...)
			return k.db
		}
	}
	return nil
}

// Put keeps d, locked and done with its query, for the next Take of key
// (see Pool); the oldest kept DB beyond Config.Keep is closed, and all
// are once no query came for Config.Idle. A closed pool closes d.
func (p *Pool) Put(key string, d *DB) {
	p.mu.Lock()
	if p.closed || !d.locked || d.closed {
		p.mu.Unlock()
		d.Close()
		return
	}
	p.kept = append(p.kept, keptDB{key: key, db: d})
	var drop *DB
	if len(p.kept) > p.cfg.Keep {
		drop = p.kept[0].db
		p.kept = p.kept[1:]
	}
	if p.idle == nil {
		p.idle = time.AfterFunc(p.cfg.Idle, p.expire)
	} else {
		p.idle.Reset(p.cfg.Idle)
	}
	p.mu.Unlock()
	if drop != nil {
		drop.Close()
	}
}

// topUp refills the pool after a query's DB closed.
func (p *Pool) topUp() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.fillLocked()
	}
}

// fillLocked restarts the idle timer and starts the filling goroutine
// when queries come and the pool is not full.
func (p *Pool) fillLocked() {
	if p.gets < 2 {
		return
	}
	if p.idle == nil {
		p.idle = time.AfterFunc(p.cfg.Idle, p.expire)
	} else {
		p.idle.Reset(p.cfg.Idle)
	}
	if p.filling || len(p.ready) >= p.cfg.Size {
		return
	}
	p.filling = true
	p.wg.Add(1)
	go p.fill()
}

// fill opens DBs until the pool is full or closed. An error (a bad
// LAKEHOUSE_DUCKDB_* value) stops it: Get then reports it from Open.
func (p *Pool) fill() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		if p.closed || p.gets == 0 || len(p.ready) >= p.cfg.Size {
			p.filling = false
			p.changed.Broadcast()
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		d, err := Open(p.cfg.Options)
		p.mu.Lock()
		if err != nil || p.closed || p.gets == 0 {
			p.filling = false
			p.changed.Broadcast()
			p.mu.Unlock()
			if d != nil {
				d.Close()
			}
			return
		}
		p.ready = append(p.ready, d)
		p.changed.Broadcast()
		p.mu.Unlock()
	}
}

// expire closes the waiting DBs when no query asked for one for Idle.
func (p *Pool) expire() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1) // before Close's Wait: Close sets closed under mu first
	defer p.wg.Done()
	ready, kept := p.ready, p.kept
	p.ready, p.kept, p.gets = nil, nil, 0
	p.mu.Unlock()
	closeAll(ready, kept)
}

func closeAll(ready []*DB, kept []keptDB) {
	for _, d := range ready {
		d.Close()
	}
	for _, k := range kept {
		k.db.Close()
	}
}

// Close closes the DBs opened ahead, waiting for one being opened. Get
// still works afterwards, opening a DB each time.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	p.changed.Broadcast()
	if p.idle != nil {
		p.idle.Stop()
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	ready, kept := p.ready, p.kept
	p.ready, p.kept = nil, nil
	p.mu.Unlock()
	closeAll(ready, kept)
	return nil
}

// Waiting is how many DBs are open and waiting for a query.
func (p *Pool) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}
