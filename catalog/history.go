package catalog

import (
	"context"
	"fmt"
)

// TableHistory implements Service. It walks the commits reachable from
// ref (through every parent, so a merged branch's commits are listed
// too) and keeps those whose table state differs from their first
// parent's. Snapshot ids are then checked against the table's metadata
// at ref: a merge may have replaced a merged branch's snapshots with one
// of its own (the format says which it replaced), and a revert leaves
// later snapshots out, so only the ids that metadata holds are given.
func (l *Local) TableHistory(ctx context.Context, ref Ref, id TableIdent, limit int) ([]TableChange, error) {
	var (
		out     []TableChange
		atRef   TableEntry
		existed bool
	)
	err := l.store.View(ctx, func(tx Tx) error {
		start, err := l.resolve(tx, ref)
		if err != nil {
			return err
		}
		st, err := l.tree(tx, start)
		if err != nil {
			return err
		}
		atRef, existed = st.Tables[id]
		err = walkHistory(tx, start, func(c *Commit) (bool, error) {
			ch, err := l.tableChangeAt(tx, c, id)
			if err != nil {
				return false, err
			}
			if ch != nil {
				out = append(out, *ch)
			}
			return limit <= 0 || len(out) < limit, nil
		})
		if err == nil && len(out) == 0 {
			// A removed table still has a history; fail only if it never existed.
			return tableNotFound(id, ref.String(), st)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	// Without the table at ref, no metadata there holds any snapshot.
	held := map[int64]SnapshotInfo{}
	if existed {
		snaps, err := l.format.Snapshots(ctx, id, atRef)
		if err != nil {
			return nil, fmt.Errorf("table %s at %s: %w", id, ref, err)
		}
		for _, s := range snaps {
			held[s.ID] = s
		}
	}
	for i := range out {
		s, ok := held[out[i].SnapshotID]
		if !ok {
			out[i].SnapshotID = 0
			continue
		}
		out[i].ReplacedSnapshotID = s.ReplacedSnapshotID
	}
	return out, nil
}

// tableChangeAt returns how commit c changed table id from its first
// parent, nil if it did not.
func (l *Local) tableChangeAt(tx Tx, c *Commit, id TableIdent) (*TableChange, error) {
	t, err := l.tree(tx, c)
	if err != nil {
		return nil, err
	}
	cur, ok := t.Tables[id]
	var prev TableEntry
	pok := false
	if len(c.Parents) > 0 {
		pc, err := tx.GetCommit(c.Parents[0])
		if err != nil {
			return nil, err
		}
		pt, err := l.tree(tx, pc)
		if err != nil {
			return nil, err
		}
		prev, pok = pt.Tables[id]
	}
	var change string
	switch {
	case ok && !pok:
		change = "created"
	case !ok && pok:
		change = "removed"
	case ok && cur.MetadataLocation != prev.MetadataLocation:
		change = "updated"
	default:
		return nil, nil
	}
	return &TableChange{Commit: c, Change: change, SnapshotID: cur.SnapshotID, MetadataLocation: cur.MetadataLocation}, nil
}
