package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/keys"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) authCommand() *urfave.Command {
	roles := make([]string, len(flight.Roles))
	for i, r := range flight.Roles {
		roles[i] = string(r)
	}
	return &urfave.Command{
		Name:  "auth",
		Usage: "API keys of `lakehouse serve`: the first admin key, then keys per user and role",
		Description: "Keys live hashed in the catalog of the data dir; a key is printed once, when it is made.\n" +
			"A server whose data dir has keys asks every call for one (Authorization: Bearer <key>);\n" +
			"clients pass it with " + envAPIKey + " or `lakehouse config set api_key <key>`.\n" +
			"Roles: reader reads; writer also writes branches <user>.* and merges them into main;\n" +
			"admin does everything, including tags and keys; worker is a fleet worker's.\n" +
			"`auth key` commands work on the local data dir, or on the server with --addr (admin keys only).",
		Subcommands: []*urfave.Command{
			{
				Name:  "init",
				Usage: "create the first admin key of the local data dir, and print it once",
				Flags: []urfave.Flag{
					&urfave.StringFlag{Name: "user", Usage: "user of the key (default: the profile's user)"},
				},
				Action: e.authInit,
			},
			{
				Name:  "key",
				Usage: "create, list and revoke API keys",
				Subcommands: []*urfave.Command{
					{
						Name: "create", Usage: "create an API key and print it once",
						Flags: []urfave.Flag{
							&urfave.StringFlag{Name: "user", Usage: "user of the key: its commits' author, owner of branches <user>.* (required)"},
							&urfave.StringFlag{Name: "role", Usage: strings.Join(roles, ", ") + " (required)"},
							&urfave.StringFlag{Name: "expires", Usage: "lifetime, e.g. 720h or 30d (default: never expires)"},
						},
						Action: e.authKeyCreate,
					},
					{Name: "ls", Usage: "list API keys (never the keys themselves)", Action: e.authKeyList},
					{Name: "revoke", Usage: "revoke an API key: it stops working at once", ArgsUsage: "KEY_ID", Action: e.authKeyRevoke},
				},
			},
		},
	}
}

// localKeys are the keys of the local data dir. busyHint is the hint
// when another process (a server) holds the catalog file.
func (e *Env) localKeys(ctx context.Context, busyHint string) (*keys.Keys, error) {
	store, err := e.catalogStore(ctx)
	if errdefs.Is(err, errdefs.ErrUnavailable) {
		msg, _ := errdefs.Split(err)
		return nil, errdefs.WithHint(errdefs.ErrUnavailable, busyHint, "%s", msg)
	}
	if err != nil {
		return nil, err
	}
	return keys.New(store, keys.Options{}), nil
}

// catalogStore is the store under the embedded catalog.
func (e *Env) catalogStore(ctx context.Context) (catalog.Store, error) {
	svc, err := e.Service(ctx)
	if err != nil {
		return nil, err
	}
	l, ok := svc.(interface{ Store() catalog.Store })
	if !ok {
		return nil, errdefs.New(errdefs.ErrInternal, "the catalog of %s has no store", e.DataDir)
	}
	return l.Store(), nil
}

func (e *Env) authInit(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	if err := e.localOnly("auth init"); err != nil {
		return err
	}
	user := c.String("user")
	if user == "" {
		p, err := e.Profile()
		if err != nil {
			return err
		}
		user = e.author(p)
	}
	if err := checkUser(user); err != nil {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "name the key's user with --user",
			"invalid user: %v", err)
	}
	k, err := e.localKeys(c.Context, "if `lakehouse serve` holds it, stop the server, run `lakehouse auth init`, and start it again")
	if err != nil {
		return err
	}
	has, err := k.Any(c.Context)
	if err != nil {
		return err
	}
	if has {
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"create more with `lakehouse auth key create` (an admin key, against the server with --addr, or here while it is stopped); list them with `lakehouse auth key ls`",
			"%s has API keys already", e.DataDir)
	}
	key, secret, err := k.Create(c.Context, keys.NewKey{User: user, Role: string(flight.RoleAdmin)})
	if err != nil {
		return err
	}
	return e.printCreatedKey(flight.CreatedKey{KeyInfo: flight.WireKey(key, time.Now()), Key: secret}, true)
}

// serverHoldsKeys is the hint of an `auth key` command that finds the
// data dir held by another process.
const serverHoldsKeys = "if `lakehouse serve` holds it, manage keys through the server: --addr HOST:PORT with an admin key"

// printCreatedKey shows a new key, the only time it is shown.
func (e *Env) printCreatedKey(k flight.CreatedKey, first bool) error {
	return e.emit(k, func(w io.Writer) error {
		fmt.Fprintf(w, "created %s key %s for user %s", k.Role, k.ID, k.User)
		if !k.Expires.IsZero() {
			fmt.Fprintf(w, ", expires %s", formatTime(k.Expires))
		}
		fmt.Fprintf(w, "\n\n  %s\n\n", k.Key)
		fmt.Fprintf(w, "This is the only time the key is shown. A client passes it with\n"+
			"  export %s=%s\nor keeps it in its profile:\n  lakehouse config set api_key %s\n", envAPIKey, k.Key, k.Key)
		if first {
			fmt.Fprintf(w, "From its next start, `lakehouse serve` on this data dir asks every call for a key,\n"+
				"and may listen beyond this machine (--flight-addr 0.0.0.0:8815, with --tls-cert/--tls-key).\n")
		}
		return nil
	})
}

func (e *Env) authKeyCreate(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	if c.String("user") == "" || c.String("role") == "" {
		return usageError(c, "give the key's --user and --role")
	}
	user := c.String("user")
	if err := checkUser(user); err != nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "invalid user: %v", err)
	}
	role, err := flight.ParseRole(c.String("role"))
	if err != nil {
		return err
	}
	var ttl time.Duration
	if s := c.String("expires"); s != "" {
		if ttl, err = parseLifetime(s); err != nil {
			return usageError(c, "invalid --expires %q: use a duration such as 720h, 90m or 30d", s)
		}
	}
	remote, err := e.remoteClient()
	if err != nil {
		return err
	}
	if remote != nil {
		k, err := remote.CreateKey(c.Context, user, role, ttl)
		if err != nil {
			return err
		}
		return e.printCreatedKey(*k, false)
	}
	k, err := e.localKeys(c.Context, serverHoldsKeys)
	if err != nil {
		return err
	}
	nk := keys.NewKey{User: user, Role: string(role)}
	if ttl > 0 {
		nk.Expires = time.Now().Add(ttl)
	}
	key, secret, err := k.Create(c.Context, nk)
	if err != nil {
		return err
	}
	return e.printCreatedKey(flight.CreatedKey{KeyInfo: flight.WireKey(key, time.Now()), Key: secret}, false)
}

// parseLifetime reads a key's lifetime: a Go duration, or a number of
// days ("30d").
func parseLifetime(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseInt(n, 10, 32)
		if err != nil {
			return 0, err
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("not positive")
	}
	return d, nil
}

func (e *Env) authKeyList(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	var list []flight.KeyInfo
	remote, err := e.remoteClient()
	if err != nil {
		return err
	}
	if remote != nil {
		if list, err = remote.ListKeys(c.Context); err != nil {
			return err
		}
	} else {
		k, err := e.localKeys(c.Context, serverHoldsKeys)
		if err != nil {
			return err
		}
		ks, err := k.List(c.Context)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, key := range ks {
			list = append(list, flight.WireKey(key, now))
		}
	}
	list = nonNil(list)
	return e.emit(list, func(w io.Writer) error {
		if len(list) == 0 {
			_, err := fmt.Fprintln(w, "no API keys; create the first with `lakehouse auth init`")
			return err
		}
		t := e.newTable("KEY_ID", "USER", "ROLE", "STATUS", "CREATED", "EXPIRES")
		for _, k := range list {
			t.row(k.ID, k.User, k.Role, k.Status, formatTime(k.Created), formatTime(k.Expires))
		}
		return t.write(w)
	})
}

func (e *Env) authKeyRevoke(c *urfave.Context) error {
	args, err := positional(c, "KEY_ID")
	if err != nil {
		return err
	}
	id := args[0]
	if err := keys.ValidID(id); err != nil {
		return err
	}
	var info flight.KeyInfo
	remote, err := e.remoteClient()
	if err != nil {
		return err
	}
	if remote != nil {
		k, err := remote.RevokeKey(c.Context, id)
		if err != nil {
			return err
		}
		info = *k
	} else {
		k, err := e.localKeys(c.Context, serverHoldsKeys)
		if err != nil {
			return err
		}
		key, err := k.Revoke(c.Context, id)
		if err != nil {
			return err
		}
		info = flight.WireKey(key, time.Now())
	}
	return e.emit(info, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "revoked key %s (user %s, %s) at %s\n", info.ID, info.User, info.Role, formatTime(info.Revoked))
		return err
	})
}
