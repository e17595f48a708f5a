package flight

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func TestPlacedTicket(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	p := PlacedQuery{ID: "q1", SQL: "SELECT 1", Namespace: "default", Warehouse: "s3://b/p", Worker: "w1", Lease: "l1",
		Tables:  []PlacedTable{{Namespace: "sales", Name: "t", Files: []string{"s3://b/p/sales/t/data/a.parquet"}}},
		Expires: now.Add(time.Minute)}
	ticket, err := SignPlaced(key, p)
	if err != nil {
		t.Fatal(err)
	}
	var tk Ticket
	if err := json.Unmarshal(ticket, &tk); err != nil || tk.Placed == nil {
		t.Fatalf("ticket %s: %v", ticket, err)
	}
	tampered := append(json.RawMessage{}, tk.Placed...)
	tampered[len(tampered)-2] = 'X'
	for _, tc := range []struct {
		name  string
		key   []byte
		body  json.RawMessage
		sig   string
		now   time.Time
		class error
	}{
		{"valid", key, tk.Placed, tk.Sig, now, nil},
		{"expired", key, tk.Placed, tk.Sig, now.Add(2 * time.Minute), errdefs.ErrNotFound},
		{"other key", []byte("another key"), tk.Placed, tk.Sig, now, errdefs.ErrPermissionDenied},
		{"no key", nil, tk.Placed, tk.Sig, now, errdefs.ErrPermissionDenied},
		{"tampered body", key, tampered, tk.Sig, now, errdefs.ErrPermissionDenied},
		{"no signature", key, tk.Placed, "", now, errdefs.ErrPermissionDenied},
		{"signature not hex", key, tk.Placed, "zz", now, errdefs.ErrPermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyPlaced(tc.key, tc.body, tc.sig, tc.now)
			if tc.class == nil {
				if err != nil || got.SQL != p.SQL || got.Tables[0].Files[0] != p.Tables[0].Files[0] {
					t.Fatalf("VerifyPlaced: %+v, %v", got, err)
				}
				return
			}
			if !errdefs.Is(err, tc.class) {
				t.Fatalf("VerifyPlaced: %v, want %v", err, tc.class)
			}
		})
	}
}

// fakePlaced is a worker's PlacedQueries: joined as w1 under lease l2.
type fakePlaced struct {
	joined bool
	key    []byte
	ran    []string
}

func (f *fakePlaced) Ticket() (string, string, []byte, bool) { return "w1", "l2", f.key, f.joined }

func (f *fakePlaced) RunPlaced(ctx context.Context, p PlacedQuery) (array.RecordReader, func() error, error) {
	f.ran = append(f.ran, p.ID)
	schema := arrow.NewSchema([]arrow.Field{{Name: "one", Type: arrow.PrimitiveTypes.Int64}}, nil)
	r, err := array.NewRecordReader(schema, nil)
	return r, func() error { return nil }, err
}

// TestPlacedDoGet: a worker's data plane runs a placed query only for a
// valid ticket of its own name and current lease.
func TestPlacedDoGet(t *testing.T) {
	key := []byte("fleet key")
	placed := &fakePlaced{key: key}
	c := serveWorker(t, Options{Version: "v9", Role: "worker", Placed: placed})
	get := func(p PlacedQuery) error {
		tkt, err := SignPlaced(key, p)
		if err != nil {
			t.Fatal(err)
		}
		stream, err := c.fc.DoGet(context.Background(), &flight.Ticket{Ticket: tkt})
		for err == nil {
			_, err = stream.Recv()
		}
		if err == io.EOF {
			return nil
		}
		return c.err(err)
	}
	ok := PlacedQuery{ID: "q", SQL: "SELECT 1", Worker: "w1", Lease: "l2", Expires: time.Now().Add(time.Minute)}
	if err := get(ok); !errdefs.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("before the worker joined: %v", err)
	}
	placed.joined = true
	other, old := ok, ok
	other.Worker, old.Lease = "w2", "l1"
	for _, tc := range []struct {
		name  string
		p     PlacedQuery
		class error
		msg   string
	}{
		{"another worker's", other, errdefs.ErrNotFound, "is for worker w2"},
		{"an earlier lease", old, errdefs.ErrNotFound, "earlier registration"},
		{"valid", ok, nil, ""},
	} {
		err := get(tc.p)
		if tc.class == nil && err != nil || tc.class != nil && (!errdefs.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("%s: %v, want %v with %q", tc.name, err, tc.class, tc.msg)
		}
	}
	if len(placed.ran) != 1 {
		t.Fatalf("ran %v, want the valid ticket's query only", placed.ran)
	}
}
