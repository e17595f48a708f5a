package cli

import (
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// serverAddr is the server the commands talk to: --addr, else
// $LAKEHOUSE_ADDR, else the profile's addr; "" for the embedded catalog.
func (e *Env) serverAddr(p *Profile) string {
	if e.Addr != "" {
		return e.Addr
	}
	if p != nil {
		return p.Addr
	}
	return ""
}

// apiKey is the key sent to the server: $LAKEHOUSE_API_KEY, else the
// profile's api_key.
func (e *Env) apiKey(p *Profile) string {
	if k := e.Getenv(envAPIKey); k != "" {
		return k
	}
	if p != nil {
		return p.APIKey
	}
	return ""
}

// dial makes the server's client the service of the commands.
func (e *Env) dial(addr string, p *Profile) (catalog.Service, error) {
	c, err := flight.Dial(addr, flight.DialOptions{APIKey: e.apiKey(p), Author: e.author(p), CAFile: e.Getenv(envTLSCA)})
	if err != nil {
		return nil, err
	}
	e.Log.Debug("talking to server", "addr", addr)
	e.svc, e.remote = c, c
	return c, nil
}

// remoteClient returns the server's client, or nil in embedded mode.
func (e *Env) remoteClient() (*flight.Client, error) {
	p, err := e.Profile()
	if err != nil {
		return nil, err
	}
	addr := e.serverAddr(p)
	if addr == "" {
		return nil, nil
	}
	if e.remote == nil {
		if _, err := e.dial(addr, p); err != nil {
			return nil, err
		}
	}
	return e.remote, nil
}

// localOnly refuses a command that works on the files of a data dir when
// the commands talk to a server.
func (e *Env) localOnly(cmd string) error {
	p, err := e.Profile()
	if err != nil {
		return err
	}
	if addr := e.serverAddr(p); addr != "" {
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"run it on the server's machine, against its data dir (without --addr / "+envAddr+")",
			"lakehouse %s works on a local data dir, and the commands talk to the server at %s", cmd, addr)
	}
	return nil
}
