package envcache

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

type compileJob struct {
	in *Interpreter
	p  *Package
}

// compileLater queues bytecode compilation of an installed package.
func (c *Cache) compileLater(in *Interpreter, p *Package) {
	if c.closed.Load() {
		return
	}
	c.compileMu.Lock()
	defer c.compileMu.Unlock()
	if c.compiling[p.Hash] {
		return
	}
	c.compiling[p.Hash] = true
	c.compiles.Add(1)
	select {
	case c.compileQ <- compileJob{in, p}:
	default: // queue full: a later Environment call queues it again
		delete(c.compiling, p.Hash)
		c.compiles.Done()
	}
}

// Wait blocks until the bytecode of every package this Cache installed or
// assembled is compiled (or ctx ends).
func (c *Cache) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { c.compiles.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close abandons the bytecode compilations not started yet (a later
// Environment call, in this or another process, queues them again) and
// waits for the one running. Call Wait first to finish them all.
func (c *Cache) Close() error {
	c.closed.Store(true)
	return c.Wait(context.Background())
}

// compileLoop compiles one package at a time, leaving the other cores to
// the functions that are starting.
func (c *Cache) compileLoop() {
	for job := range c.compileQ {
		// Installs first: they are what a waiting function needs.
		for c.installing.Load() > 0 && !c.closed.Load() {
			time.Sleep(50 * time.Millisecond)
		}
		if !c.closed.Load() {
			c.compileInstalled(job.in, job.p)
		}
		c.compileMu.Lock()
		delete(c.compiling, job.p.Hash)
		c.compileMu.Unlock()
		c.compiles.Done()
	}
}

// compileInstalled adds bytecode to an installed, read-only folder under
// the package's lock: folders are opened for writing (only the owner) for
// the length of compileall and closed again, and the metadata records it.
// Python writes each pyc atomically, so functions importing meanwhile see
// either no pyc or a whole one.
func (c *Cache) compileInstalled(in *Interpreter, p *Package) {
	ctx := context.Background()
	start := time.Now()
	release, err := c.lockPackage(ctx, p.Hash)
	if err != nil {
		return
	}
	defer release()
	cur := c.readPackage(p.Hash)
	if cur == nil || cur.Compiled || cur.Stamp == "" {
		return
	}
	// Bytecode added to a damaged folder would seal the damage in.
	if err := c.checkStamp(cur); err != nil {
		c.log.Warn("bytecode of package not compiled", "name", cur.Name, "err", err)
		return
	}
	filepath.WalkDir(cur.Dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			os.Chmod(path, 0o755)
		}
		return nil
	})
	c.compile(ctx, in, cur.Dir)
	size, err := c.seal(p.Hash, cur.Dir)
	if err != nil {
		c.log.Warn("bytecode of package", "name", cur.Name, "err", err)
		return
	}
	_, stamp, err := walkStamp(cur.Dir)
	if err != nil {
		c.log.Warn("bytecode of package", "name", cur.Name, "err", err)
		return
	}
	cur.Compiled, cur.Size = true, size
	c.writeMeta(cur, stamp) // keeps the last-use time
	c.log.Debug("compiled package", "name", cur.Name, "version", cur.Version, "took", time.Since(start))
}
