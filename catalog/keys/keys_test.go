package keys_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/catalog/keys"
	"github.com/lakehouse-dev/lakehouse/catalog/memstore"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// stores lists the catalog.Store implementations keys run on.
func stores(t *testing.T) map[string]catalog.Store {
	b, err := bolt.Open(filepath.Join(t.TempDir(), "catalog.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return map[string]catalog.Store{"memstore": memstore.New(), "bolt": b}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestKeys(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
			k := keys.New(store, keys.Options{Now: clk.now})

			if any, err := k.Any(ctx); err != nil || any {
				t.Fatalf("Any on an empty store = %v, %v", any, err)
			}
			admin, adminKey, err := k.Create(ctx, keys.NewKey{User: "root", Role: "admin"})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(adminKey, keys.Prefix+admin.ID+"_") || len(adminKey) != len("lh_")+16+1+43 {
				t.Errorf("key %q is not lh_<id>_<secret> of id %s", adminKey, admin.ID)
			}
			clk.t = clk.t.Add(time.Second)
			alice, aliceKey, err := k.Create(ctx, keys.NewKey{User: "alice", Role: "writer", Expires: clk.t.Add(time.Hour), CreatedBy: "root"})
			if err != nil {
				t.Fatal(err)
			}

			got, err := k.Authenticate(ctx, aliceKey)
			if err != nil || got.ID != alice.ID || got.User != "alice" || got.Role != "writer" {
				t.Fatalf("Authenticate(alice) = %+v, %v", got, err)
			}

			// Only hashes are stored.
			store.View(ctx, func(tx catalog.Tx) error {
				return tx.ListRecords("apikey", "", func(id string, v []byte) error {
					secret := adminKey[len(adminKey)-43:]
					if strings.Contains(string(v), secret) || strings.Contains(string(v), aliceKey[len(aliceKey)-43:]) {
						t.Errorf("record %s holds a secret: %s", id, v)
					}
					return nil
				})
			})

			// A second Keys over the same store sees the same keys.
			k2 := keys.New(store, keys.Options{Now: clk.now})
			if got, err := k2.Authenticate(ctx, adminKey); err != nil || got.User != "root" {
				t.Fatalf("Authenticate(admin) on a new Keys = %+v, %v", got, err)
			}

			bad := []struct{ name, key, want string }{
				{"empty", "", "no API key"},
				{"garbage", "hello", "invalid API key"},
				{"unknown id", keys.Prefix + "0123456789abcdef_" + aliceKey[len(aliceKey)-43:], "invalid API key"},
				{"wrong secret", aliceKey[:len(aliceKey)-1] + flip(aliceKey[len(aliceKey)-1]), "invalid API key"},
				{"truncated", aliceKey[:len(aliceKey)-5], "invalid API key"},
				{"other key's id", keys.Prefix + admin.ID + "_" + aliceKey[len(aliceKey)-43:], "invalid API key"},
			}
			for _, b := range bad {
				_, err := k.Authenticate(ctx, b.key)
				if !errdefs.Is(err, errdefs.ErrUnauthenticated) || err.Error() != b.want {
					t.Errorf("%s: Authenticate = %v, want unauthenticated %q", b.name, err, b.want)
				}
			}

			// Expiry.
			clk.t = clk.t.Add(time.Hour)
			if _, err := k.Authenticate(ctx, aliceKey); !errdefs.Is(err, errdefs.ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
				t.Errorf("expired key: %v", err)
			}

			// Revocation takes effect at once, and is idempotent.
			if _, err := k.Revoke(ctx, admin.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := k.Authenticate(ctx, adminKey); !errdefs.Is(err, errdefs.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
				t.Errorf("revoked key: %v", err)
			}
			r1, _ := k.Revoke(ctx, admin.ID)
			clk.t = clk.t.Add(time.Minute)
			if r2, err := k.Revoke(ctx, admin.ID); err != nil || !r2.Revoked.Equal(r1.Revoked) {
				t.Errorf("second revoke = %+v, %v; want the first revocation time %s", r2, err, r1.Revoked)
			}
			if _, err := k.Revoke(ctx, "0123456789abcdef"); !errdefs.Is(err, errdefs.ErrNotFound) {
				t.Errorf("revoke of an unknown id: %v", err)
			}

			// Revoked and expired keys stay listed; the store still has keys.
			list, err := keys.New(store, keys.Options{Now: clk.now}).List(ctx)
			if err != nil || len(list) != 2 {
				t.Fatalf("List = %+v, %v", list, err)
			}
			if list[0].ID != admin.ID || list[0].Status(clk.t) != "revoked" || list[1].Status(clk.t) != "expired" {
				t.Errorf("List = %+v", list)
			}
			if any, err := k.Any(ctx); err != nil || !any {
				t.Errorf("Any with only dead keys = %v, %v; want true", any, err)
			}
		})
	}
}

func TestCreateInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	k := keys.New(memstore.New(), keys.Options{Now: func() time.Time { return now }})
	tests := []struct {
		name string
		nk   keys.NewKey
	}{
		{"empty user", keys.NewKey{Role: "reader"}},
		{"user with a dot", keys.NewKey{User: "a.b", Role: "reader"}},
		{"user with a space", keys.NewKey{User: "a b", Role: "reader"}},
		{"user starting with -", keys.NewKey{User: "-a", Role: "reader"}},
		{"empty role", keys.NewKey{User: "alice"}},
		{"expired already", keys.NewKey{User: "alice", Role: "reader", Expires: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := k.Create(ctx, tt.nk); !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Create(%+v) = %v, want invalid argument", tt.nk, err)
			}
		})
	}
	if any, _ := k.Any(ctx); any {
		t.Error("a failed Create stored a key")
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "0123", "0123456789ABCDEF", "0123456789abcdeg", "0123456789abcdef0"} {
		if err := keys.ValidID(id); !errdefs.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidID(%q) = %v", id, err)
		}
	}
	if err := keys.ValidID("0123456789abcdef"); err != nil {
		t.Error(err)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// FuzzAuthenticate: no input panics or authenticates but the key itself.
func FuzzAuthenticate(f *testing.F) {
	k := keys.New(memstore.New(), keys.Options{})
	_, key, err := k.Create(context.Background(), keys.NewKey{User: "alice", Role: "reader"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(key)
	f.Add("lh_")
	f.Add("lh_0123456789abcdef_")
	f.Fuzz(func(t *testing.T, s string) {
		_, err := k.Authenticate(context.Background(), s)
		if (err == nil) != (s == key) {
			t.Errorf("Authenticate(%q) = %v", s, err)
		}
	})
}

// TestConcurrent authenticates while keys are created and revoked (run
// with -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := keys.New(memstore.New(), keys.Options{})
	_, key, err := k.Create(ctx, keys.NewKey{User: "alice", Role: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			nk, _, err := k.Create(ctx, keys.NewKey{User: "bob", Role: "reader"})
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := k.Revoke(ctx, nk.ID); err != nil {
				t.Error(err)
				return
			}
			if _, err := k.List(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if _, err := k.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
}
