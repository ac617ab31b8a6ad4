// Package podworker runs the Pods bound to a node: one worker per Pod
// turns the Pod's spec into a network namespace and containers, keeps them
// as the spec and the restart policy say, and reports what it sees in the
// Pod's status. It is the heart of the kubelet.
//
// # Level-triggered
//
// A worker does not react to events one by one. Whatever wakes it — the
// Pod changed in the API, a container exited, a probe changed its mind, a
// back-off ran out, the periodic resync — it does the same thing: look at
// the Pod's latest spec and at what really runs, and close the gap (sync).
// A wake-up that is missed or doubled changes nothing; nothing is lost
// across an agent restart, since the next sync starts from what runs.
//
// # A Pod's life on the node
//
//	bound to this node (spec.nodeName)
//	         │
//	         ▼
//	┌─────────────────┐  netns + CNI ADD fails
//	│ sandbox         │────────────────────────► FailedCreatePodSandBox event,
//	│ (network)       │◄─────────────────────────  retried with back-off
//	└────────┬────────┘
//	         │ IP; /etc/resolv.conf, /etc/hosts, /etc/hostname written
//	         ▼
//	┌─────────────────┐
//	│ init containers │  one after the other, each to exit 0 (a failed one
//	│                 │  restarts with back-off; with Never the Pod fails)
//	└────────┬────────┘
//	         │ Initialized
//	         ▼
//	┌─────────────────┐
//	│ containers, in  │  each one by the diagram below; the phase follows
//	│ spec order      │  (Pending → Running → Succeeded / Failed)
//	└────────┬────────┘
//	         │ all exited for good (Never, or OnFailure with exit 0):
//	         │ the network is released, the status kept
//	         │
//	         │ deletionTimestamp set, or the Pod gone from the API
//	         ▼
//	┌─────────────────┐
//	│ terminating     │  stop containers (SIGTERM, grace period, SIGKILL),
//	│                 │  CNI DEL, delete netns, remove containers and files
//	└────────┬────────┘
//	         │ delete with gracePeriodSeconds=0: the agent's word that
//	         ▼ nothing runs any more, and the Pod leaves the API
//	       gone
//
// # One container
//
//	              ┌──────────────────────────┐
//	  no container│ Waiting                  │ image pull fails
//	─────────────►│  ContainerCreating       │───────────────► Waiting ErrImagePull
//	              │                          │                    │ next sync, within
//	              │                          │◄─── back-off ──────┤ the back-off
//	              └────────────┬─────────────┘  10 s … 5 min      ▼
//	                           │ image ready:           Waiting ImagePullBackOff
//	                           │ create (attempt n), start
//	                           ▼
//	              ┌──────────────────────────┐  startup probe passes, then
//	              │ Running                  │  readiness decides Ready;
//	              │  ready = readiness probe │  liveness or startup probe fails:
//	              └────────────┬─────────────┘  Killing, stop ──┐
//	                           │ process exits                  │
//	                           ▼◄───────────────────────────────┘
//	              ┌──────────────────────────┐
//	              │ Terminated               │  restartPolicy says no:
//	              │  Completed (0) / Error   │──────────────────────► stays
//	              └────────────┬─────────────┘
//	                           │ restartPolicy says yes
//	                           ▼
//	              first restart at once; later ones wait
//	              10 s, 20 s, 40 s ... 5 min after the exit,
//	              shown as Waiting CrashLoopBackOff (lastState: the exit),
//	              then create attempt n+1 (restartCount n+1)
//
// Each attempt is a new runtime container; the previous one is kept (for
// lastState and `logs --previous`) until the next attempt replaces it.
//
// # Restart safety
//
// Containers carry the Pod's UID, their name and attempt in their labels,
// and the pod network remembers each Pod's namespace and IP. A restarted
// agent hands each worker the containers the runtime lists for its Pod:
// a running container is watched again, not started twice, and the
// Pod keeps its IP (no second CNI ADD). Containers and networks of Pods
// that are no longer bound here — deleted while the agent was away — go
// through the same termination as a deleted Pod.
package podworker
