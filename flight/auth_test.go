package flight

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/keys"
	"github.com/lakehouse-dev/lakehouse/catalog/memstore"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// TestAllow is the role policy: each role against each kind of call.
// The same table runs against a real server in cli/auth_test.go.
func TestAllow(t *testing.T) {
	t.Parallel()
	admin := Principal{User: "root", Role: RoleAdmin}
	alice := Principal{User: "alice", Role: RoleWriter}
	rob := Principal{User: "rob", Role: RoleReader}
	worker := Principal{User: "w1", Role: RoleWorker}
	nobody := Principal{User: "x", Role: "boss"}
	merge := func(into, src string) []string { return MergeBody{Into: into, Source: src}.Branches() }

	tests := []struct {
		name     string
		perm     Permission
		branches []string
		allowed  []Principal
	}{
		{"read", PermRead, nil, []Principal{admin, alice, rob}},
		{"write own branch", PermWrite, []string{"alice.dev"}, []Principal{admin, alice}},
		{"write another user's branch", PermWrite, []string{"bob.dev"}, []Principal{admin}},
		{"write a branch named like the user", PermWrite, []string{"alicex.dev"}, []Principal{admin}},
		{"write main", PermWrite, []string{"main"}, []Principal{admin}},
		{"write naming no branch", PermWrite, nil, []Principal{admin}},
		{"write naming an empty branch", PermWrite, []string{""}, []Principal{admin}},
		{"rename own to own", PermWrite, RenameBody{From: "alice.a", To: "alice.b"}.Branches(), []Principal{admin, alice}},
		{"rename own to another's", PermWrite, RenameBody{From: "alice.a", To: "bob.b"}.Branches(), []Principal{admin}},
		{"rename main to own", PermWrite, RenameBody{From: "main", To: "alice.b"}.Branches(), []Principal{admin}},
		{"merge own into main", PermMerge, merge("main", "alice.dev"), []Principal{admin, alice}},
		{"merge own at a commit into main", PermMerge, merge("main", "alice.dev@3f9a1c2e"), []Principal{admin, alice}},
		{"merge another's into main", PermMerge, merge("main", "bob.dev"), []Principal{admin}},
		{"merge a commit into main", PermMerge, merge("main", "@3f9a1c2e"), []Principal{admin}},
		{"merge a tag into main", PermMerge, merge("main", "v1"), []Principal{admin}},
		{"merge main into own", PermMerge, merge("alice.dev", "main"), []Principal{admin, alice}},
		{"merge another's into own", PermMerge, merge("alice.dev", "bob.dev"), []Principal{admin, alice}},
		{"merge own into another's", PermMerge, merge("bob.dev", "alice.dev"), []Principal{admin}},
		{"tag", PermTag, nil, []Principal{admin}},
		{"keys", PermAdmin, nil, []Principal{admin}},
		{"fleet", PermWorker, nil, []Principal{worker}},
		{"take work", PermWork, nil, []Principal{admin, worker}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, p := range []Principal{admin, alice, rob, worker, nobody} {
				want := false
				for _, a := range tt.allowed {
					want = want || a == p
				}
				err := p.Allow(tt.perm, tt.branches...)
				if want && err != nil {
					t.Errorf("%s (%s): %v, want allowed", p.User, p.Role, err)
				}
				if !want && !errdefs.Is(err, errdefs.ErrPermissionDenied) {
					t.Errorf("%s (%s): %v, want permission denied", p.User, p.Role, err)
				}
			}
		})
	}
}

func TestKeyAuthenticator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := keys.New(memstore.New(), keys.Options{})
	_, alice, err := k.Create(ctx, keys.NewKey{User: "alice", Role: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	_, badKey, err := k.Create(ctx, keys.NewKey{User: "eve", Role: "boss"})
	if err != nil {
		t.Fatal(err)
	}
	auth := KeyAuthenticator(k)
	p, err := auth.Authenticate(ctx, alice)
	if err != nil || p.User != "alice" || p.Role != RoleWriter || p.KeyID == "" {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	for name, key := range map[string]string{"missing": "", "bad": alice + "x", "unknown role": badKey} {
		_, err := auth.Authenticate(ctx, key)
		if !errdefs.Is(err, errdefs.ErrUnauthenticated) {
			t.Errorf("%s: %v, want unauthenticated", name, err)
			continue
		}
		if _, hint := errdefs.Split(err); name != "unknown role" && !strings.Contains(hint, "LAKEHOUSE_API_KEY") {
			t.Errorf("%s: hint %q does not say how to pass a key", name, hint)
		}
	}
}

// TestKeysTiming checks that an unknown key id and a wrong secret of a
// known id take alike: both hash the key and compare in constant time. The
// bound is loose (a factor of 3 on medians) so a busy machine does not
// fail it; a map lookup or a store read on one path only would show.
func TestKeysTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	ctx := context.Background()
	k := keys.New(memstore.New(), keys.Options{})
	for range 100 {
		if _, _, err := k.Create(ctx, keys.NewKey{User: "alice", Role: "reader"}); err != nil {
			t.Fatal(err)
		}
	}
	_, key, _ := k.Create(ctx, keys.NewKey{User: "bob", Role: "reader"})
	wrong := key[:len(key)-1] + "A"
	if wrong == key {
		wrong = key[:len(key)-1] + "B"
	}
	unknown := keys.Prefix + "0123456789abcdef" + key[len(keys.Prefix)+16:]
	median := func(s string) time.Duration {
		ds := make([]time.Duration, 0, 301)
		for range 301 {
			start := time.Now()
			for range 20 {
				k.Authenticate(ctx, s)
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	a, b := median(wrong), median(unknown)
	if a > 3*b || b > 3*a {
		t.Errorf("wrong secret takes %s per 20 calls, unknown id %s", a, b)
	}
	t.Logf("wrong secret %s, unknown id %s per 20 calls", a, b)
}
