package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
)

// Interface is what the node agent needs from a container runtime.
// *Runtime implements it with containerd; the agent's unit tests use a fake.
type Interface interface {
	// ImportDir imports the image tarballs of a folder (new or changed ones).
	ImportDir(ctx context.Context, dir string) ([]Image, error)
	// EnsureImage makes an image present as the pull policy says; its
	// errors match ErrImagePull, ErrImageNeverPull or ErrInvalidImageName.
	EnsureImage(ctx context.Context, ref string, policy PullPolicy) (Image, error)

	// CreateContainer creates a container (not yet running) and returns its ID.
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	// Start runs a created container once.
	Start(ctx context.Context, id string) error
	// Wait blocks until the container is not running and returns its status.
	Wait(ctx context.Context, id string) (ContainerStatus, error)
	// Stop sends the stop signal, waits up to grace, then kills. A container
	// that is not running is left as it is.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove kills the container if needed and deletes it, its snapshot and
	// its FIFOs. Removing a missing container is not an error.
	Remove(ctx context.Context, id string) error
	// Status reports the container's state, exit code and times.
	Status(ctx context.Context, id string) (ContainerStatus, error)
	// List returns every container of this agent, with labels and status.
	List(ctx context.Context) ([]Container, error)

	// Exec runs a command in a running container and returns its exit code.
	Exec(ctx context.Context, id string, cfg ExecConfig) (int, error)
	// Attach streams a running container's output, and input to it.
	Attach(ctx context.Context, id string, cfg AttachConfig) error
}

var _ Interface = (*Runtime)(nil)

// ErrNotFound is returned (wrapped) for a container that does not exist.
var ErrNotFound = errors.New("not found")

// DefaultNamespace is the containerd namespace used when Config.Namespace
// is empty. Agents that share a containerd must each set their own.
const DefaultNamespace = "kubelite"

// DefaultSnapshotter is the snapshotter images are unpacked for.
const DefaultSnapshotter = "overlayfs"

// Config says which containerd to use and how.
type Config struct {
	// Address is containerd's socket, e.g. Containerd.Address() of a
	// supervised one, or /run/containerd/containerd.sock.
	Address string
	// Namespace is this agent's containerd namespace: every image,
	// container and snapshot it creates lives there. Default "kubelite".
	Namespace string
	// StateDir is this agent's own folder for container FIFOs, e.g.
	// <data-dir>/runtime. Required.
	StateDir string
	// Snapshotter defaults to overlayfs.
	Snapshotter string
	// PlainHTTPRegistries are registry hosts ("host:port") pulled from over
	// plain HTTP; loopback registries always are.
	PlainHTTPRegistries []string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Runtime runs the containers of one node agent through containerd.
// Create it with Connect and release it with Close, which leaves the
// containers running so that the next Connect adopts them.
type Runtime struct {
	client              *containerd.Client
	namespace           string
	snapshotter         string
	stateDir            string
	plainHTTPRegistries []string
	log                 *slog.Logger

	// ctx lives as long as the Runtime: the watchers of running containers
	// wait under it, and Close cancels it and waits for them (wg).
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	running  map[string]*runningContainer // by container ID
	imported map[string]importStamp       // by tarball path
}

// Connect connects to containerd and adopts the containers of cfg.Namespace
// that are still running from a previous agent: their output goes to their
// log files again and their exits are recorded. Containers that exited while
// no agent was watching get their exit recorded now.
func Connect(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Address == "" {
		return nil, errors.New("connect to containerd: no address")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("connect to containerd: no state directory for FIFOs")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = DefaultSnapshotter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("connect to containerd: %w", err)
	}

	client, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(cfg.Namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.Address, err)
	}
	version, err := client.Version(namespaces.WithNamespace(ctx, cfg.Namespace))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.Address, err)
	}

	lifetime, cancel := context.WithCancel(namespaces.WithNamespace(context.Background(), cfg.Namespace))
	r := &Runtime{
		client:              client,
		namespace:           cfg.Namespace,
		snapshotter:         cfg.Snapshotter,
		stateDir:            cfg.StateDir,
		plainHTTPRegistries: cfg.PlainHTTPRegistries,
		log:                 cfg.Logger.With("namespace", cfg.Namespace),
		ctx:                 lifetime,
		cancel:              cancel,
		running:             map[string]*runningContainer{},
		imported:            map[string]importStamp{},
	}
	if err := r.adoptAll(r.withNamespace(ctx)); err != nil {
		r.Close()
		return nil, err
	}
	r.log.Info("connected to containerd", "address", cfg.Address, "version", version.Version)
	return r, nil
}

// Close stops watching containers and releases their FIFOs and the
// connection. Containers keep running; the next Connect adopts them.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()

	r.cancel()
	r.wg.Wait() // every watcher has returned
	r.mu.Lock()
	for _, rc := range r.running {
		if rc.stdio != nil {
			rc.stdio.detach()
		}
	}
	r.running = nil
	r.mu.Unlock()
	return r.client.Close()
}

// Namespace is this Runtime's containerd namespace.
func (r *Runtime) Namespace() string { return r.namespace }

func (r *Runtime) withNamespace(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.namespace)
}

// fifoDir is the folder of one container's FIFOs.
func (r *Runtime) fifoDir(id string) string {
	return filepath.Join(r.stateDir, "fifo", id)
}

// execFIFODir holds the FIFOs of exec sessions, each in its own subfolder.
func (r *Runtime) execFIFODir() string {
	return filepath.Join(r.stateDir, "fifo", "exec")
}

// loadContainer loads a container, with ErrNotFound when it does not exist.
func (r *Runtime) loadContainer(ctx context.Context, id string) (containerd.Container, error) {
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	return c, nil
}

// newID returns a random container ID, 64 hex digits as CRI's are.
func newID() string {
	var b [32]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on Linux
	}
	return hex.EncodeToString(b[:])
}

// cleanupContext is for work that must finish even when the caller's
// context has ended (deleting what was half created, recording an exit).
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}
