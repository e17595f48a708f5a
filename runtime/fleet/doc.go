// Package fleet is the membership of a fleet: the workers that joined a
// control plane (`lakehouse serve --role=control`), as the control plane
// keeps them (Registry), and a worker's side of joining and staying
// joined (Member).
//
// A worker dials the control plane: it registers (its name, version,
// cores, memory, free /dev/shm, launcher, the environments its package
// cache holds and the address of its own Flight data plane) and gets a
// Lease, then heartbeats with its load every interval. The control plane
// never dials a worker for membership; workers may sit behind NAT.
//
// # Invariants
//
//   - A name is held by one live registration. A second worker asking for
//     a live name is refused (errdefs.ErrAlreadyExists), unless it is the
//     same worker instance (the same data dir) come back after a restart:
//     then the new registration replaces the old one.
//   - A worker that has not heartbeated for Config.Timeout is lost: its
//     lease is dead from then on, whatever it sends later. Lost workers
//     stay listed (state lost) for Config.Forget, or until their name
//     registers again.
//   - Every registration gets a new lease: a random id and an epoch one
//     above the name's previous one. Check refuses a dead lease; later
//     work (results a worker reports) is accepted only under a live one,
//     so a worker partitioned past the timeout cannot deliver late.
//   - The registry's ticket key signs the queries the control plane
//     places on workers; each lease carries it (in clear: use TLS beyond
//     loopback). A restarted control plane has a new key, so the tickets
//     of the one before are refused.
//   - Placements counts queries placed on a worker since its last
//     heartbeat; with the heartbeat's Load.Running it is the load by
//     which LeastLoaded picks a worker.
//   - The registry lives in the control plane's memory only. A restarted
//     control plane knows no lease: workers' heartbeats are refused
//     (errdefs.ErrNotFound) and Member registers again.
//
// # Caveats
//
//   - Clocks: ages and timeouts are the control plane's clock only; a
//     worker's clock is never compared with it.
//   - Instance ids are chosen by the worker (a random id kept in its data
//     dir); the key of role worker is what authenticates it, not the id.
package fleet
