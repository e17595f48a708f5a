package memstore

import (
	"bytes"
	"maps"
	"slices"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// tx reads through its overlay (if any) to the committed state. A View has
// no overlay and refuses writes.
type tx struct {
	base *state
	ov   *overlay // nil in a View
}

var _ catalog.Tx = (*tx)(nil)

type refKey struct {
	kind catalog.RefKind
	name string
}

type recordKey struct{ kind, key string }

// change is a pending write: a new value, or a deletion.
type change[V any] struct {
	v       V
	deleted bool
}

// overlay holds the writes of one Update. Commits and trees are only ever
// added, so they need no deletions.
type overlay struct {
	refs    map[refKey]change[catalog.CommitID]
	commits map[catalog.CommitID]*catalog.Commit
	trees   map[catalog.TreeID]*catalog.Tree
	records map[recordKey]change[[]byte]
}

func newOverlay() *overlay {
	return &overlay{
		refs:    map[refKey]change[catalog.CommitID]{},
		commits: map[catalog.CommitID]*catalog.Commit{},
		trees:   map[catalog.TreeID]*catalog.Tree{},
		records: map[recordKey]change[[]byte]{},
	}
}

// applyTo moves the overlay's writes into st.
func (o *overlay) applyTo(st *state) {
	for k, ch := range o.refs {
		if ch.deleted {
			delete(st.refs[k.kind], k.name)
		} else {
			st.refs[k.kind][k.name] = ch.v
		}
	}
	maps.Copy(st.commits, o.commits)
	maps.Copy(st.trees, o.trees)
	for k, ch := range o.records {
		if ch.deleted {
			delete(st.records[k.kind], k.key)
			continue
		}
		m := st.records[k.kind]
		if m == nil {
			m = map[string][]byte{}
			st.records[k.kind] = m
		}
		m[k.key] = ch.v
	}
}

func (t *tx) writable(op string) error {
	if t.ov == nil {
		return errdefs.New(errdefs.ErrFailedPrecondition, "catalog store: %s in a read-only transaction", op)
	}
	return nil
}

func checkKind(kind catalog.RefKind) error {
	if kind != catalog.KindBranch && kind != catalog.KindTag {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: unknown ref kind %q", kind)
	}
	return nil
}

func (t *tx) lookupRef(kind catalog.RefKind, name string) (catalog.CommitID, bool) {
	if t.ov != nil {
		if ch, ok := t.ov.refs[refKey{kind, name}]; ok {
			return ch.v, !ch.deleted
		}
	}
	id, ok := t.base.refs[kind][name]
	return id, ok
}

// GetRef implements catalog.Tx.
func (t *tx) GetRef(kind catalog.RefKind, name string) (catalog.CommitID, error) {
	if err := checkKind(kind); err != nil {
		return "", err
	}
	id, ok := t.lookupRef(kind, name)
	if !ok {
		return "", errdefs.New(errdefs.ErrNotFound, "%s %q not found", kind, name)
	}
	return id, nil
}

// PutRef implements catalog.Tx.
func (t *tx) PutRef(kind catalog.RefKind, name string, id catalog.CommitID) error {
	if err := t.writable("PutRef"); err != nil {
		return err
	}
	if err := checkKind(kind); err != nil {
		return err
	}
	if name == "" || id == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: PutRef needs a name and a commit id (got %s %q → %q)", kind, name, id)
	}
	t.ov.refs[refKey{kind, name}] = change[catalog.CommitID]{v: id}
	return nil
}

// DeleteRef implements catalog.Tx.
func (t *tx) DeleteRef(kind catalog.RefKind, name string) error {
	if err := t.writable("DeleteRef"); err != nil {
		return err
	}
	if err := checkKind(kind); err != nil {
		return err
	}
	if _, ok := t.lookupRef(kind, name); !ok {
		return errdefs.New(errdefs.ErrNotFound, "%s %q not found", kind, name)
	}
	t.ov.refs[refKey{kind, name}] = change[catalog.CommitID]{deleted: true}
	return nil
}

// ListRefs implements catalog.Tx.
func (t *tx) ListRefs(kind catalog.RefKind) ([]catalog.RefEntry, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	refs := maps.Clone(t.base.refs[kind])
	if t.ov != nil {
		for k, ch := range t.ov.refs {
			switch {
			case k.kind != kind:
			case ch.deleted:
				delete(refs, k.name)
			default:
				refs[k.name] = ch.v
			}
		}
	}
	var out []catalog.RefEntry
	for _, name := range slices.Sorted(maps.Keys(refs)) {
		out = append(out, catalog.RefEntry{Name: name, Commit: refs[name]})
	}
	return out, nil
}

func (t *tx) lookupCommit(id catalog.CommitID) *catalog.Commit {
	if t.ov != nil {
		if c, ok := t.ov.commits[id]; ok {
			return c
		}
	}
	return t.base.commits[id]
}

// GetCommit implements catalog.Tx. It returns a copy.
func (t *tx) GetCommit(id catalog.CommitID) (*catalog.Commit, error) {
	c := t.lookupCommit(id)
	if c == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, "commit %s not found", id)
	}
	return cloneCommit(c), nil
}

// PutCommit implements catalog.Tx. It stores a copy.
func (t *tx) PutCommit(c *catalog.Commit) error {
	if err := t.writable("PutCommit"); err != nil {
		return err
	}
	if c == nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: PutCommit of a nil commit")
	}
	if want := c.ComputeID(); c.ID != want {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: commit id %q does not match its content (%s)", c.ID, want)
	}
	if t.lookupCommit(c.ID) != nil {
		return nil
	}
	t.ov.commits[c.ID] = cloneCommit(c)
	return nil
}

// FindCommits implements catalog.Tx. A limit <= 0 means no limit.
func (t *tx) FindCommits(prefix string, limit int) ([]catalog.CommitID, error) {
	var out []catalog.CommitID
	add := func(ids map[catalog.CommitID]*catalog.Commit) {
		for id := range ids {
			if strings.HasPrefix(string(id), prefix) {
				out = append(out, id)
			}
		}
	}
	add(t.base.commits)
	if t.ov != nil {
		add(t.ov.commits) // disjoint from base: PutCommit skips stored ids
	}
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (t *tx) lookupTree(id catalog.TreeID) *catalog.Tree {
	if t.ov != nil {
		if tr, ok := t.ov.trees[id]; ok {
			return tr
		}
	}
	return t.base.trees[id]
}

// GetTree implements catalog.Tx. It returns a copy.
func (t *tx) GetTree(id catalog.TreeID) (*catalog.Tree, error) {
	tr := t.lookupTree(id)
	if tr == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, "tree %s not found", id)
	}
	return cloneTree(tr), nil
}

// PutTree implements catalog.Tx. Like catalog/bolt, it returns nil for an id
// that is already stored without checking tr against it.
func (t *tx) PutTree(id catalog.TreeID, tr *catalog.Tree) error {
	if err := t.writable("PutTree"); err != nil {
		return err
	}
	if tr == nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: PutTree of a nil tree")
	}
	if id != "" && t.lookupTree(id) != nil {
		return nil
	}
	if want := tr.ComputeID(); id != want {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: tree id %q does not match its content (%s)", id, want)
	}
	t.ov.trees[id] = cloneTree(tr)
	return nil
}

func (t *tx) lookupRecord(kind, key string) ([]byte, bool) {
	if t.ov != nil {
		if ch, ok := t.ov.records[recordKey{kind, key}]; ok {
			return ch.v, !ch.deleted
		}
	}
	v, ok := t.base.records[kind][key]
	return v, ok
}

func checkRecordKind(kind string) error {
	if kind == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: record kind is empty")
	}
	return nil
}

// GetRecord implements catalog.Tx. It returns a copy.
func (t *tx) GetRecord(kind, key string) ([]byte, error) {
	if err := checkRecordKind(kind); err != nil {
		return nil, err
	}
	v, ok := t.lookupRecord(kind, key)
	if !ok {
		return nil, errdefs.New(errdefs.ErrNotFound, "%s record %q not found", kind, key)
	}
	return bytes.Clone(v), nil
}

// PutRecord implements catalog.Tx. It stores a copy of value.
func (t *tx) PutRecord(kind, key string, value []byte) error {
	if err := t.writable("PutRecord"); err != nil {
		return err
	}
	if kind == "" || key == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: PutRecord needs a kind and a key (got %q, %q)", kind, key)
	}
	v := make([]byte, len(value))
	copy(v, value)
	t.ov.records[recordKey{kind, key}] = change[[]byte]{v: v}
	return nil
}

// DeleteRecord implements catalog.Tx.
func (t *tx) DeleteRecord(kind, key string) error {
	if err := t.writable("DeleteRecord"); err != nil {
		return err
	}
	if err := checkRecordKind(kind); err != nil {
		return err
	}
	if _, ok := t.lookupRecord(kind, key); !ok {
		return errdefs.New(errdefs.ErrNotFound, "%s record %q not found", kind, key)
	}
	t.ov.records[recordKey{kind, key}] = change[[]byte]{deleted: true}
	return nil
}

// ListRecords implements catalog.Tx. The keys are those present when the
// walk starts; fn gets a copy of each value and may write records.
func (t *tx) ListRecords(kind, prefix string, fn func(key string, value []byte) error) error {
	if err := checkRecordKind(kind); err != nil {
		return err
	}
	var keys []string
	for k := range t.base.records[kind] {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	if t.ov != nil {
		for k, ch := range t.ov.records {
			if k.kind == kind && !ch.deleted && strings.HasPrefix(k.key, prefix) {
				keys = append(keys, k.key)
			}
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for _, k := range keys {
		v, ok := t.lookupRecord(kind, k)
		if !ok {
			continue // deleted from the base, or by fn
		}
		if err := fn(k, bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}

func cloneCommit(c *catalog.Commit) *catalog.Commit {
	cc := *c
	cc.Parents = slices.Clone(c.Parents)
	cc.Properties = maps.Clone(c.Properties)
	return &cc
}

// cloneTree copies t deeply: Tree.Clone shares namespace property maps.
func cloneTree(t *catalog.Tree) *catalog.Tree {
	out := &catalog.Tree{
		Namespaces: make(map[catalog.Namespace]catalog.NamespaceEntry, len(t.Namespaces)),
		Tables:     maps.Clone(t.Tables),
	}
	if out.Tables == nil {
		out.Tables = map[catalog.TableIdent]catalog.TableEntry{}
	}
	for ns, e := range t.Namespaces {
		out.Namespaces[ns] = catalog.NamespaceEntry{Properties: maps.Clone(e.Properties)}
	}
	return out
}
