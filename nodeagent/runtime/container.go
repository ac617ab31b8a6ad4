package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
)

// Labels every container carries, so that an agent finds its containers
// again after a restart. The pod and container names use the kubelet's own
// label keys.
const (
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelContainerName = "io.kubernetes.container.name"

	labelPrefix     = "kubelite.runtime/"
	labelAttempt    = labelPrefix + "attempt"
	labelLogPath    = labelPrefix + "log-path"
	labelTTY        = labelPrefix + "tty"
	labelStdin      = labelPrefix + "stdin"
	labelStartedAt  = labelPrefix + "started-at"
	labelFinishedAt = labelPrefix + "finished-at"
	labelExitCode   = labelPrefix + "exit-code"
)

// ContainerSpec is everything needed to create one container of a Pod.
type ContainerSpec struct {
	PodUID       string
	PodName      string
	PodNamespace string
	Name         string // the container's name in the Pod
	Attempt      int    // 0 for the first container of this name, +1 on each restart

	Image      string   // as written in the Pod; normalised here
	Command    []string // replaces the image's entrypoint (and drops its cmd)
	Args       []string // replaces the image's cmd
	Env        []string // KEY=value, over the image's environment
	WorkingDir string
	Hostname   string // the Pod's name, usually

	NetNSPath      string // the Pod's network namespace to join; "" for a new, empty one
	ResolvConfPath string // host file bind-mounted at /etc/resolv.conf
	HostsPath      string // host file bind-mounted at /etc/hosts
	HostnamePath   string // host file bind-mounted at /etc/hostname
	Mounts         []Mount

	LogPath string // CRI-format log file; "" discards the output
	TTY     bool
	Stdin   bool // keep stdin open for Attach

	Labels map[string]string // more labels to find the container by
}

// Mount is a host path bind-mounted into a container.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// State is where a container is in its life; see the package doc's diagram.
type State string

const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// ContainerStatus is what the agent reports in a Pod's containerStatuses.
type ContainerStatus struct {
	State      State
	Pid        uint32 // while running
	ExitCode   int    // once exited; 128+N when killed by signal N
	StartedAt  time.Time
	FinishedAt time.Time
}

// Container is one container of this agent, as List finds it.
type Container struct {
	ID           string
	PodUID       string
	PodName      string
	PodNamespace string
	Name         string
	Attempt      int
	Image        string
	LogPath      string
	Labels       map[string]string // ContainerSpec.Labels
	CreatedAt    time.Time
	Status       ContainerStatus
}

// runningContainer is a started task this Runtime watches.
type runningContainer struct {
	id        string
	container containerd.Container
	task      containerd.Task
	stdio     *containerIO  // nil when its FIFOs could not be reopened
	exited    chan struct{} // closed once the exit is recorded and the task deleted
}

func (s *ContainerSpec) validate() error {
	var problems []string
	if s.Name == "" {
		problems = append(problems, "no container name")
	}
	if s.Image == "" {
		problems = append(problems, "no image")
	}
	for key := range s.Labels {
		if strings.HasPrefix(key, labelPrefix) || strings.HasPrefix(key, "io.kubernetes.") {
			problems = append(problems, fmt.Sprintf("label %q uses a reserved prefix", key))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (s *ContainerSpec) labels() map[string]string {
	labels := map[string]string{
		LabelPodUID:        s.PodUID,
		LabelPodName:       s.PodName,
		LabelPodNamespace:  s.PodNamespace,
		LabelContainerName: s.Name,
		labelAttempt:       strconv.Itoa(s.Attempt),
		labelLogPath:       s.LogPath,
		labelTTY:           strconv.FormatBool(s.TTY),
		labelStdin:         strconv.FormatBool(s.Stdin),
	}
	for k, v := range s.Labels {
		labels[k] = v
	}
	return labels
}

// specOpts turns the ContainerSpec into OCI spec options, on top of the
// image's configuration.
func (s *ContainerSpec) specOpts(img containerd.Image, entrypoint, cmd []string) []oci.SpecOpts {
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		WithCommand(entrypoint, cmd, s.Command, s.Args),
	}
	if len(s.Env) > 0 {
		opts = append(opts, oci.WithEnv(s.Env))
	}
	if s.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(s.WorkingDir))
	}
	if s.Hostname != "" {
		opts = append(opts, oci.WithHostname(s.Hostname))
	}
	if s.TTY {
		opts = append(opts, oci.WithTTY)
	}
	if s.NetNSPath != "" {
		opts = append(opts, WithNetworkNamespace(s.NetNSPath))
	}
	if s.ResolvConfPath != "" {
		opts = append(opts, WithResolvConf(s.ResolvConfPath))
	}
	if s.HostsPath != "" {
		opts = append(opts, WithHostsFile(s.HostsPath))
	}
	if s.HostnamePath != "" {
		opts = append(opts, WithHostnameFile(s.HostnamePath))
	}
	for _, m := range s.Mounts {
		opts = append(opts, WithBindMount(m.HostPath, m.ContainerPath, m.ReadOnly))
	}
	return opts
}

// CreateContainer creates a container from an image that EnsureImage (or
// ImportDir) made present. It does not start it.
func (r *Runtime) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	ctx = r.withNamespace(ctx)
	if err := spec.validate(); err != nil {
		return "", fmt.Errorf("create container %q of pod %s/%s: %w", spec.Name, spec.PodNamespace, spec.PodName, err)
	}
	name, err := NormalizeImage(spec.Image)
	if err != nil {
		return "", fmt.Errorf("create container %q: %w", spec.Name, err)
	}
	img, err := r.client.GetImage(ctx, name)
	if err != nil {
		return "", fmt.Errorf("create container %q: image %s: %w", spec.Name, name, err)
	}
	if _, err := r.unpacked(ctx, img); err != nil {
		return "", fmt.Errorf("create container %q: %w", spec.Name, err)
	}
	config, err := img.Spec(ctx)
	if err != nil {
		return "", fmt.Errorf("create container %q: image %s config: %w", spec.Name, name, err)
	}

	id := newID()
	// The snapshot is named after the container, so Remove finds it, and is
	// created under a lease: if creating the container fails, containerd's
	// garbage collector removes it.
	_, err = r.client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithImageStopSignal(img, "SIGTERM"),
		containerd.WithSnapshotter(r.snapshotter),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(spec.specOpts(img, config.Config.Entrypoint, config.Config.Cmd)...),
		containerd.WithAdditionalContainerLabels(spec.labels()),
	)
	if err != nil {
		return "", fmt.Errorf("create container %q of pod %s/%s: %w", spec.Name, spec.PodNamespace, spec.PodName, err)
	}
	r.log.Debug("created container", "id", id, "pod", spec.PodNamespace+"/"+spec.PodName, "container", spec.Name, "image", name)
	return id, nil
}

// Start starts a created container. Its output goes to its log file from
// the first byte, and its exit is waited for before it starts, so even a
// command that exits at once is seen.
func (r *Runtime) Start(ctx context.Context, id string) error {
	ctx = r.withNamespace(ctx)
	container, err := r.loadContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	labels, err := container.Labels(ctx)
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	if labels[labelStartedAt] != "" {
		return fmt.Errorf("start container %s: already started (a container runs once; create a new one to restart)", id)
	}

	stdio, err := newContainerIO(r.fifoDir(id), labels[labelLogPath], labels[labelTTY] == "true", labels[labelStdin] == "true")
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	task, err := container.NewTask(ctx, stdio.creator)
	if err != nil {
		stdio.Close() // NewTask closes it too on most errors; Close is idempotent
		return fmt.Errorf("start container %s: %w", id, err)
	}
	// Waiting under the Runtime's lifetime, not this call's: the watcher
	// outlives the call.
	exits, err := task.Wait(r.ctx)
	startedAt := time.Now() // before the process runs, so never after its exit
	if err == nil {
		err = task.Start(ctx)
	}
	if err != nil {
		cleanup, cancel := cleanupContext(ctx)
		defer cancel()
		if _, derr := task.Delete(cleanup, containerd.WithProcessKill); derr != nil {
			r.log.Warn("could not delete the task of a container that failed to start", "id", id, "err", derr)
		}
		return fmt.Errorf("start container %s: %w", id, err)
	}
	if _, err := container.SetLabels(ctx, map[string]string{labelStartedAt: formatTime(startedAt)}); err != nil {
		r.log.Warn("could not record the start time", "id", id, "err", err)
	}
	rc := &runningContainer{id: id, container: container, task: task, stdio: stdio, exited: make(chan struct{})}
	if !r.track(rc, exits) {
		return fmt.Errorf("start container %s: runtime closed", id)
	}
	r.log.Info("started container", "id", id, "pod", labels[LabelPodNamespace]+"/"+labels[LabelPodName], "container", labels[LabelContainerName], "pid", task.Pid())
	return nil
}

// track registers a running container and starts its watcher. It returns
// false once the Runtime is closed.
func (r *Runtime) track(rc *runningContainer, exits <-chan containerd.ExitStatus) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		if rc.stdio != nil {
			rc.stdio.detach()
		}
		return false
	}
	r.running[rc.id] = rc
	r.wg.Add(1)
	go r.watch(rc, exits)
	return true
}

func (r *Runtime) runningContainer(id string) *runningContainer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[id]
}

// watch waits for a running container to exit and records the exit. If the
// wait is lost (containerd restarted), it waits again once containerd is
// back. It returns without recording anything when the Runtime closes.
func (r *Runtime) watch(rc *runningContainer, exits <-chan containerd.ExitStatus) {
	defer r.wg.Done()
	retry := backoff{next: 100 * time.Millisecond, max: 5 * time.Second}
	for {
		var status containerd.ExitStatus
		select {
		case <-r.ctx.Done():
			return
		case status = <-exits:
		}
		if status.Error() == nil {
			r.finish(rc, status.ExitCode(), status.ExitTime())
			return
		}
		if r.ctx.Err() != nil {
			return
		}
		r.log.Warn("lost the wait on a container; waiting again", "id", rc.id, "err", status.Error())
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(retry.step()):
		}
		exits, _ = rc.task.Wait(r.ctx) // reports its errors on the channel
	}
}

// finish records a container's exit in its labels, drains its output into
// the log file and deletes its task.
func (r *Runtime) finish(rc *runningContainer, exitCode uint32, exitedAt time.Time) {
	ctx, cancel := cleanupContext(r.ctx)
	defer cancel()
	if exitedAt.IsZero() {
		exitedAt = time.Now()
	}
	if _, err := rc.container.SetLabels(ctx, map[string]string{
		labelExitCode:   strconv.FormatUint(uint64(exitCode), 10),
		labelFinishedAt: formatTime(exitedAt),
	}); err != nil {
		r.log.Error("could not record a container's exit", "id", rc.id, "exit_code", exitCode, "err", err)
	}
	// Delete waits for the output to be copied, then closes our FIFO ends.
	if _, err := rc.task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		r.log.Error("could not delete an exited task", "id", rc.id, "err", err)
		if rc.stdio != nil {
			rc.stdio.Close()
		}
	}
	os.RemoveAll(r.fifoDir(rc.id))

	r.mu.Lock()
	if r.running[rc.id] == rc {
		delete(r.running, rc.id)
	}
	r.mu.Unlock()
	close(rc.exited)
	r.log.Info("container exited", "id", rc.id, "exit_code", exitCode)
}

// Wait blocks until the container is not running (or ctx ends) and returns
// its status. For a container that never started it returns at once.
func (r *Runtime) Wait(ctx context.Context, id string) (ContainerStatus, error) {
	if rc := r.runningContainer(id); rc != nil {
		select {
		case <-rc.exited:
		case <-ctx.Done():
			return ContainerStatus{}, ctx.Err()
		}
	}
	return r.Status(ctx, id)
}

// Stop sends the container's stop signal (SIGTERM unless the image says
// otherwise), waits up to grace for it to exit, then kills every process in
// it with SIGKILL. A process that ignores SIGTERM — busybox httpd running as
// PID 1 has no handler for it — takes the SIGKILL path. Stopping a
// container that is not running does nothing.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.withNamespace(ctx)
	rc := r.runningContainer(id)
	if rc == nil {
		return nil
	}
	signal, err := containerd.GetStopSignal(ctx, rc.container, syscall.SIGTERM)
	if err != nil {
		signal = syscall.SIGTERM
	}
	if err := rc.task.Kill(ctx, signal); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-rc.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop container %s: %w", id, ctx.Err())
	case <-timer.C:
	}
	r.log.Info("container did not stop within its grace period; killing it", "id", id, "grace", grace)
	return r.kill(ctx, rc)
}

// kill sends SIGKILL to every process of a running container and waits
// until its exit is recorded.
func (r *Runtime) kill(ctx context.Context, rc *runningContainer) error {
	if err := rc.task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("kill container %s: %w", rc.id, err)
	}
	select {
	case <-rc.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kill container %s: %w", rc.id, ctx.Err())
	}
}

// Remove deletes a container, killing it first if it runs, with its
// snapshot and FIFOs. Its log file stays: the agent owns log files.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = r.withNamespace(ctx)
	container, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return os.RemoveAll(r.fifoDir(id))
	}
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if rc := r.runningContainer(id); rc != nil {
		if err := r.kill(ctx, rc); err != nil {
			return fmt.Errorf("remove: %w", err)
		}
	}
	// A task can remain when nobody watched it: delete it, killing what runs.
	if task, err := container.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %s: delete task: %w", id, err)
		}
	}
	if err := container.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := os.RemoveAll(r.fifoDir(id)); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	r.log.Debug("removed container", "id", id)
	return nil
}

// Status reports a container's state. Exit code and times come from its
// labels once its exit is recorded, and from its task before that.
func (r *Runtime) Status(ctx context.Context, id string) (ContainerStatus, error) {
	ctx = r.withNamespace(ctx)
	container, err := r.loadContainer(ctx, id)
	if err != nil {
		return ContainerStatus{}, fmt.Errorf("status: %w", err)
	}
	labels, err := container.Labels(ctx)
	if err != nil {
		return ContainerStatus{}, fmt.Errorf("status of container %s: %w", id, err)
	}
	return r.status(ctx, container, labels)
}

func (r *Runtime) status(ctx context.Context, container containerd.Container, labels map[string]string) (ContainerStatus, error) {
	status := ContainerStatus{
		StartedAt:  parseTime(labels[labelStartedAt]),
		FinishedAt: parseTime(labels[labelFinishedAt]),
	}
	if code, err := strconv.Atoi(labels[labelExitCode]); err == nil && !status.FinishedAt.IsZero() {
		status.State = StateExited
		status.ExitCode = code
		return status, nil
	}

	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		status.State = StateCreated
		if !status.StartedAt.IsZero() {
			status.State = StateUnknown // started, but its exit was never recorded
		}
		return status, nil
	}
	if err != nil {
		return ContainerStatus{}, fmt.Errorf("status of container %s: %w", container.ID(), err)
	}
	ts, err := task.Status(ctx)
	if err != nil {
		return ContainerStatus{}, fmt.Errorf("status of container %s: %w", container.ID(), err)
	}
	switch ts.Status {
	case containerd.Running, containerd.Paused, containerd.Pausing:
		status.State = StateRunning
		status.Pid = task.Pid()
	case containerd.Stopped:
		status.State = StateExited
		status.ExitCode = int(ts.ExitStatus)
		status.FinishedAt = ts.ExitTime
	case containerd.Created:
		status.State = StateCreated
	default:
		status.State = StateUnknown
	}
	return status, nil
}

// List returns every container in this agent's namespace with its labels
// and status, so that a restarted agent adopts its containers.
func (r *Runtime) List(ctx context.Context) ([]Container, error) {
	ctx = r.withNamespace(ctx)
	containers, err := r.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	list := make([]Container, 0, len(containers))
	for _, c := range containers {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list containers: %s: %w", c.ID(), err)
		}
		status, err := r.status(ctx, c, info.Labels)
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		attempt, _ := strconv.Atoi(info.Labels[labelAttempt])
		list = append(list, Container{
			ID:           c.ID(),
			PodUID:       info.Labels[LabelPodUID],
			PodName:      info.Labels[LabelPodName],
			PodNamespace: info.Labels[LabelPodNamespace],
			Name:         info.Labels[LabelContainerName],
			Attempt:      attempt,
			Image:        info.Image,
			LogPath:      info.Labels[labelLogPath],
			Labels:       userLabels(info.Labels),
			CreatedAt:    info.CreatedAt,
			Status:       status,
		})
	}
	return list, nil
}

// userLabels are the labels that came from ContainerSpec.Labels.
func userLabels(all map[string]string) map[string]string {
	user := map[string]string{}
	for k, v := range all {
		if !strings.HasPrefix(k, labelPrefix) && !strings.HasPrefix(k, "io.kubernetes.") && !strings.HasPrefix(k, "io.containerd.") {
			user[k] = v
		}
	}
	return user
}

// adoptAll takes over the tasks of a previous agent: it watches the running
// ones again, with their output going to their log files, and records the
// exit of those that stopped while no agent was watching.
func (r *Runtime) adoptAll(ctx context.Context) error {
	containers, err := r.client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("adopt containers: %w", err)
	}
	for _, c := range containers {
		if err := r.adopt(ctx, c); err != nil {
			return fmt.Errorf("adopt container %s: %w", c.ID(), err)
		}
	}
	return nil
}

func (r *Runtime) adopt(ctx context.Context, c containerd.Container) error {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil // never started, or its exit is recorded already
	}
	if err != nil {
		return err
	}
	ts, err := task.Status(ctx)
	if err != nil {
		return err
	}
	rc := &runningContainer{id: c.ID(), container: c, task: task, exited: make(chan struct{})}
	switch ts.Status {
	case containerd.Stopped:
		r.finish(rc, ts.ExitStatus, ts.ExitTime)
		return nil
	case containerd.Created:
		// A previous agent died inside Start: the process never ran.
		_, err := task.Delete(ctx, containerd.WithProcessKill)
		return err
	}

	labels, err := c.Labels(ctx)
	if err != nil {
		return err
	}
	// Load the task again, this time reopening its FIFOs.
	attached, err := c.Task(ctx, func(fifos *cio.FIFOSet) (cio.IO, error) {
		stdio, err := attachContainerIO(fifos.Config, r.fifoDir(c.ID()), labels[labelLogPath])
		if err != nil {
			return nil, err
		}
		rc.stdio = stdio
		return stdio, nil
	})
	if err != nil {
		r.log.Warn("could not reopen a running container's output; its output is lost until it restarts", "id", c.ID(), "err", err)
	} else {
		rc.task = attached
	}
	exits, err := rc.task.Wait(r.ctx)
	if err != nil {
		return err
	}
	if !r.track(rc, exits) {
		return errors.New("runtime closed")
	}
	r.log.Info("adopted running container", "id", c.ID(), "pod", labels[LabelPodNamespace]+"/"+labels[LabelPodName], "container", labels[LabelContainerName], "pid", rc.task.Pid())
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// backoff is a doubling delay with a ceiling, for retries of one loop.
type backoff struct {
	next, max time.Duration
}

func (b *backoff) step() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.max)
	return d
}
