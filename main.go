// Command lakehouse is a serverless lakehouse in one binary: git-style
// branches over Apache Iceberg tables. See README.md and package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lakehouse-dev/lakehouse/cli"
	"github.com/lakehouse-dev/lakehouse/internal/startgc"
)

func main() {
	startgc.Restore()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C stops the command cleanly (a run rolls back and
	// removes its files); a second one kills the process at once (a run's
	// reaper still cleans up).
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := cli.Main(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
