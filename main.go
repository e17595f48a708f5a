// Command lakehouse is a serverless lakehouse in one binary: git-style
// branches over Apache Iceberg tables. See README.md and package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lakehouse-dev/lakehouse/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
