// Package runtime is the node agent's narrow, readable wrapper around the
// containerd Go client: it runs a supervised containerd when none is given
// (Supervise), imports and pulls images, and creates, starts, stops, inspects,
// execs into and removes the containers of Pods (Runtime, behind Interface).
//
// # Words
//
// A container is containerd's metadata record (image, OCI spec, snapshot,
// labels); its task is the live process that runc runs through a shim. A
// container here runs once: to restart a Pod's container the agent creates a
// new one (with Attempt+1), as the kubelet does, so that the previous one's
// status and log stay readable.
//
// # Container state machine
//
//	CreateContainer
//	      │
//	      ▼
//	┌──────────┐  Start: NewTask, Wait, then task Start
//	│ created  │──────────────────────────┐
//	└──────────┘                          ▼
//	      │                         ┌──────────┐
//	      │                         │ running  │◄── Connect re-adopts
//	      │                         └──────────┘    running tasks
//	      │         process exits,        │
//	      │         or Stop: SIGTERM,     │
//	      │         grace, SIGKILL        ▼
//	      │                         ┌──────────┐  exit code and time
//	      │                         │  exited  │  kept in labels; the
//	      │                         └──────────┘  task is deleted
//	      │  Remove                       │ Remove
//	      ▼                               ▼
//	┌────────────────────────────────────────────┐
//	│ removed: container, snapshot, FIFOs gone   │
//	└────────────────────────────────────────────┘
//
// While a task runs, a watcher goroutine owned by the Runtime waits for its
// exit (registered before the task starts, so a fast exit is never missed),
// drains its output into the log file, records exit code and time in the
// container's labels and deletes the task. Exit status therefore survives an
// agent restart and a containerd restart.
//
// # Restart safety
//
// Everything lives in one containerd namespace per agent, container IDs are
// random, snapshots are named after container IDs and FIFOs live under the
// agent's own state directory, so several agents can share one containerd.
// An agent that restarts calls Connect again: running containers keep
// running (their shims never depended on the agent), their output is picked
// up again from the FIFOs, and List returns them with their labels so that
// the agent adopts them instead of starting duplicates.
//
// # Logs
//
// Container output goes to the log file in the CRI format that kubelet,
// `kubectl logs` and this project's log server read:
//
//	2016-10-06T00:17:09.669794202Z stdout F a whole line
//	2016-10-06T00:17:09.669794202Z stderr P the first part of a long line
package runtime
