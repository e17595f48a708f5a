// Package deploy holds the deployment recipes of a lakehouse fleet — the
// systemd units, the container image recipe and the Kubernetes manifests —
// and the tests that check them: every manifest decodes strictly as
// Kubernetes API objects and refers only to Secrets, keys and ports it
// defines; every unit passes `systemd-analyze verify` (or, without
// systemd, a parser of its own); and every flag the recipes pass to
// `lakehouse serve` is one of the flags listed in flags_test.go, which
// must follow the CLI. See README.md for how to use them.
package deploy
