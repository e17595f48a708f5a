package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/keys"
	"github.com/lakehouse-dev/lakehouse/flight"
)

// setupKeys gives the server the keys of its data dir: the key actions
// always, and key checks on every call when the data dir has keys. The
// server holds the catalog file alone, so the keys it caches are all there
// are, and a key it revokes stops working at once.
func setupKeys(e *Env, ctx context.Context, h *serverHooks) error {
	store, err := e.catalogStore(ctx)
	if err != nil {
		return err
	}
	k := keys.New(store, keys.Options{})
	h.opts.Keys = k
	has, err := k.Any(ctx)
	if err != nil || !has {
		return err
	}
	h.opts.Auth = flight.KeyAuthenticator(k)
	list, err := k.List(ctx)
	if err != nil {
		return err
	}
	active, now := 0, time.Now()
	for _, key := range list {
		if key.Active(now) {
			active++
		}
	}
	fmt.Fprintf(e.Stderr, "API keys: %d active; every call needs one\n", active)
	return nil
}
