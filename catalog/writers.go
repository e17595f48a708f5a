package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/proc"
)

// In-flight writers. An import writes its data and metadata files first
// and commits them after; until then nothing in the catalog references
// them, and the table state it started from may lose its last ref (its
// branch deleted) while it writes. So an import records itself as a
// writer in the same transaction that reads the state it builds on, and
// removes the record when it is done; GC keeps that state's commit and
// every file modified since the writer began. A record whose process is
// gone (a killed import) holds nothing, and GC removes it.
//
//	records/writer/<16 hex>  JSON {"pid","pid_start","boot","started","commits","what"}

const writerRecordKind = "writer"

type writerRecord struct {
	PID      int        `json:"pid"`
	PIDStart int64      `json:"pid_start,omitempty"`
	Boot     string     `json:"boot"`
	Started  time.Time  `json:"started"`
	Commits  []CommitID `json:"commits"`
	What     string     `json:"what"`
}

// alive reports whether the writer's process still runs.
func (w *writerRecord) alive() bool {
	if w.PID == os.Getpid() && w.Boot == proc.BootID() {
		return true
	}
	if w.Boot != proc.BootID() || !proc.Running(w.PID) {
		return false
	}
	return w.PIDStart == 0 || proc.StartTicks(w.PID) == w.PIDStart
}

// putWriter records an in-flight writer in tx and returns its key.
func putWriter(tx Tx, what string, commits ...CommitID) (string, error) {
	var b [8]byte
	rand.Read(b[:])
	key := hex.EncodeToString(b[:])
	pid := os.Getpid()
	rec := writerRecord{PID: pid, PIDStart: proc.StartTicks(pid), Boot: proc.BootID(),
		Started: time.Now().UTC(), Commits: commits, What: what}
	v, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	return key, tx.PutRecord(writerRecordKind, key, v)
}

// endWriter removes the record of a writer that is done (or failed).
func (l *Local) endWriter(ctx context.Context, key string) {
	// The record goes even when the caller's context is cancelled; if this
	// fails, the next GC removes it once the process is gone.
	_ = l.store.Update(context.WithoutCancel(ctx), func(tx Tx) error {
		err := tx.DeleteRecord(writerRecordKind, key)
		if errdefs.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return err
	})
}

// liveWriters returns the writers whose process runs, as holds. With
// prune, records of writers that are gone are removed.
func (l *Local) liveWriters(ctx context.Context, prune bool) ([]Hold, error) {
	var holds []Hold
	var dead []string
	err := l.store.View(ctx, func(tx Tx) error {
		return tx.ListRecords(writerRecordKind, "", func(key string, v []byte) error {
			var w writerRecord
			if json.Unmarshal(v, &w) != nil || !w.alive() {
				dead = append(dead, key)
				return nil
			}
			holds = append(holds, Hold{What: w.What, Since: w.Started, Commits: w.Commits})
			return nil
		})
	})
	if err != nil || !prune || len(dead) == 0 {
		return holds, err
	}
	err = l.store.Update(ctx, func(tx Tx) error {
		for _, k := range dead {
			if err := tx.DeleteRecord(writerRecordKind, k); err != nil && !errdefs.Is(err, errdefs.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	return holds, err
}
