package iceberg

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
)

// stagingCatalog is the table.CatalogIO behind every write. It holds one
// table state (the base) and turns a commit into a new metadata file next to
// the old ones, without making it visible anywhere: the lakehouse catalog
// does that later by committing the returned TableEntry.
type stagingCatalog struct {
	fs *writeOnceFS
	// base is the state commits apply to; baseLoc is its metadata file
	// ("" for a table being created, whose first metadata file is written
	// by the first commit).
	base    table.Metadata
	baseLoc string
	// committed is set once a commit wrote a metadata file.
	committed bool
	// staged are updates stage applied to the base in memory: the base is
	// then stagedFrom (the metadata at baseLoc) with staged applied, and
	// the next metadata file written carries them.
	staged     []table.Update
	stagedFrom table.Metadata
}

var _ table.CatalogIO = (*stagingCatalog)(nil)

// table returns the base state as an iceberg-go table bound to this catalog.
func (c *stagingCatalog) table(ident table.Identifier) *table.Table {
	return table.New(ident, c.base, c.baseLoc, c.fsFunc, c)
}

func (c *stagingCatalog) fsFunc(context.Context) (iceio.IO, error) { return c.fs, nil }

// LoadTable returns the base state (the state of the TableEntry the write
// started from, or the last state this catalog committed).
func (c *stagingCatalog) LoadTable(_ context.Context, ident table.Identifier) (*table.Table, error) {
	return c.table(ident), nil
}

// CommitTable checks reqs against the base, applies updates and writes the
// result as a new metadata file, which becomes the base of later commits.
func (c *stagingCatalog) CommitTable(_ context.Context, _ table.Identifier, reqs []table.Requirement, updates []table.Update) (table.Metadata, string, error) {
	for _, r := range reqs {
		if err := r.Validate(c.base); err != nil {
			return nil, "", fmt.Errorf("%w: %w", table.ErrCommitFailed, err)
		}
	}
	from, all := c.base, updates
	if len(c.staged) > 0 {
		from, all = c.stagedFrom, append(slices.Clone(c.staged), updates...)
	}
	updated, err := table.UpdateTableMetadata(from, all, c.baseLoc)
	if err != nil {
		return nil, "", fmt.Errorf("applying table updates: %w", err)
	}
	if updated.Location() != c.base.Location() {
		return nil, "", fmt.Errorf("a commit may not move the table from %s to %s", c.base.Location(), updated.Location())
	}
	if updated.Properties().GetBool(table.MetadataDeleteAfterCommitEnabledKey, false) {
		return nil, "", fmt.Errorf("table property %s must stay false: other branches reference old metadata files",
			table.MetadataDeleteAfterCommitEnabledKey)
	}
	loc, err := c.writeMetadata(updated, metadataVersion(c.baseLoc)+1)
	if err != nil {
		return nil, "", err
	}
	c.base, c.baseLoc, c.committed = updated, loc, true
	c.staged, c.stagedFrom = nil, nil
	return updated, loc, nil
}

// stage applies updates to the base in memory, without writing anything:
// the next commit's metadata file carries them along with its own updates,
// so that a schema change and the snapshot that needs it are one table
// state. (iceberg-go's Transaction takes such updates only through its
// UpdateSchema and UpdateSpec builders.)
func (c *stagingCatalog) stage(updates []table.Update) error {
	md, err := table.UpdateTableMetadata(c.base, updates, "")
	if err != nil {
		return err
	}
	if len(c.staged) == 0 {
		c.stagedFrom = c.base
	}
	c.base, c.staged = md, append(c.staged, updates...)
	return nil
}

// writeMetadata writes md as <location>/metadata/<version>-<uuid>.metadata.json.
func (c *stagingCatalog) writeMetadata(md table.Metadata, version int) (loc string, err error) {
	loc = strings.TrimSuffix(md.Location(), "/") + "/metadata/" + fmt.Sprintf("%05d-%s.metadata.json", version, uuid.New())
	w, err := c.fs.Create(loc)
	if err != nil {
		return "", fmt.Errorf("writing table metadata: %w", err)
	}
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing table metadata: %w", cerr)
		}
	}()
	if err := json.NewEncoder(w).Encode(md); err != nil {
		return "", fmt.Errorf("writing table metadata: %w", err)
	}
	return loc, nil
}

// metadataVersion parses the version prefix of a metadata file name
// ("00003-….metadata.json" → 3); 0 for "" or a name without one.
func metadataVersion(loc string) int {
	if loc == "" {
		return 0
	}
	base := path.Base(loc)
	i := strings.IndexByte(base, '-')
	if i <= 0 {
		return 0
	}
	n, err := strconv.Atoi(base[:i])
	if err != nil || n < 0 {
		return 0
	}
	return n
}
