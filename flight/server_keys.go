package flight

import (
	"context"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/keys"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Keys manages the server's API keys for the key actions:
// catalog/keys.Keys, the same value whose KeyAuthenticator is Options.Auth,
// so a key revoked here stops working at once.
type Keys interface {
	// Create makes a key and returns it once; an invalid user is
	// errdefs.ErrInvalidArgument.
	Create(ctx context.Context, nk keys.NewKey) (keys.Key, string, error)
	// List returns every key, revoked and expired ones included.
	List(ctx context.Context) ([]keys.Key, error)
	// Revoke revokes a key; an unknown id is errdefs.ErrNotFound.
	Revoke(ctx context.Context, id string) (keys.Key, error)
}

// registerKeys adds the key actions (admin only).
func (s *Server) registerKeys() {
	unary(s, ActionListKeys, "list API keys (never the keys themselves)", PermAdmin, func(ctx context.Context, _ struct{}) (any, error) {
		if s.opts.Keys == nil {
			return []KeyInfo{}, nil
		}
		ks, err := s.opts.Keys.List(ctx)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		out := make([]KeyInfo, len(ks))
		for i, k := range ks {
			out[i] = WireKey(k, now)
		}
		return out, nil
	})
	unary(s, ActionCreateKey, "create an API key, shown once", PermAdmin, func(ctx context.Context, b CreateKeyBody) (any, error) {
		if err := s.keysOn(); err != nil {
			return nil, err
		}
		role := Role(b.Role)
		if !role.Valid() {
			return nil, invalidRole(b.Role)
		}
		if err := keys.ValidUser(b.User); err != nil {
			return nil, err
		}
		if b.ExpiresInSeconds < 0 {
			return nil, errorf(errdefs.ErrInvalidArgument, "expires_in_seconds is negative (%d)", b.ExpiresInSeconds)
		}
		nk := keys.NewKey{User: b.User, Role: string(role), CreatedBy: PrincipalFrom(ctx).User}
		if b.ExpiresInSeconds > 0 {
			nk.Expires = time.Now().Add(time.Duration(b.ExpiresInSeconds) * time.Second)
		}
		k, secret, err := s.opts.Keys.Create(ctx, nk)
		if err != nil {
			return nil, err
		}
		s.opts.Log.Info("API key created", "key", k.ID, "user", k.User, "role", k.Role, "by", nk.CreatedBy)
		return CreatedKey{KeyInfo: WireKey(k, time.Now()), Key: secret}, nil
	})
	unary(s, ActionRevokeKey, "revoke an API key", PermAdmin, func(ctx context.Context, b KeyIDBody) (any, error) {
		if err := keys.ValidID(b.ID); err != nil {
			return nil, err
		}
		if err := s.keysOn(); err != nil {
			return nil, err
		}
		if err := s.keepAnAdmin(ctx, b.ID); err != nil {
			return nil, err
		}
		k, err := s.opts.Keys.Revoke(ctx, b.ID)
		if err != nil {
			return nil, err
		}
		s.opts.Log.Info("API key revoked", "key", k.ID, "user", k.User, "by", PrincipalFrom(ctx).User)
		return WireKey(k, time.Now()), nil
	})
}

// keysOn refuses key changes on a server that does not check keys: a key
// made there would not be asked for until a restart.
func (s *Server) keysOn() error {
	if s.opts.Keys == nil || s.opts.Auth == nil {
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"stop the server, run `lakehouse auth init` on its data dir, and start it again",
			"this server runs without API keys, so it manages none")
	}
	return nil
}

// keepAnAdmin refuses to revoke the last active admin key through the
// server: no one could manage keys over the wire any more. (Two admins
// revoking each other's keys at once may still both succeed.)
func (s *Server) keepAnAdmin(ctx context.Context, id string) error {
	ks, err := s.opts.Keys.List(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	target, admins := false, 0
	for _, k := range ks {
		if k.Role != string(RoleAdmin) || !k.Active(now) {
			continue
		}
		admins++
		target = target || k.ID == id
	}
	if target && admins == 1 {
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"create another admin key first (`lakehouse auth key create --role admin`), then revoke this one",
			"key %s is the last active admin key", id)
	}
	return nil
}
