package flight

// Fleet actions. A worker (`serve --role=worker`, a key of role worker)
// makes the first two, and may make no other call; ListWorkers is a
// reader's. A server that is not a control plane refuses all three.
const (
	// ActionRegisterWorker joins a worker to the fleet.
	ActionRegisterWorker = ActionPrefix + "RegisterWorker" // fleet.Registration → fleet.Lease
	// ActionWorkerHeartbeat reports a worker alive under its lease; a
	// dead or unknown lease is refused (FailedPrecondition, NotFound) and
	// the worker registers again.
	ActionWorkerHeartbeat = ActionPrefix + "WorkerHeartbeat" // fleet.Heartbeat → {}
	// ActionListWorkers lists the fleet, alive and lost workers.
	ActionListWorkers = ActionPrefix + "ListWorkers" // {} → [fleet.WorkerInfo]
)

// fleetActions are the actions a worker key may call.
var fleetActions = map[string]bool{ActionRegisterWorker: true, ActionWorkerHeartbeat: true}
