package kubectl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/nodeagent/kubeletserver/remotecommand"
)

// streamFlags are the flags exec and attach share (kubectl's StreamOptions).
type streamFlags struct {
	container string
	stdin     bool
	tty       bool
	quiet     bool
}

func (s *streamFlags) addTo(flags *pflag.FlagSet, containerUsage string) {
	flags.StringVarP(&s.container, "container", "c", "", containerUsage)
	flags.BoolVarP(&s.stdin, "stdin", "i", false, "Pass stdin to the container")
	flags.BoolVarP(&s.tty, "tty", "t", false, "Stdin is a TTY")
	flags.BoolVarP(&s.quiet, "quiet", "q", false, "Only print output from the remote session")
}

// session is one exec or attach as it will run: the streams to connect,
// and the local terminal when it is put in raw mode for the session.
type session struct {
	stdin          io.Reader // nil: not sent
	stdout, stderr io.Writer // stderr is nil with a TTY: it is part of stdout
	tty            bool
	terminal       *terminal // set when stdin is a terminal and tty: raw mode
}

// newSession decides the session's streams as kubectl's SetupTTY does: a
// TTY needs stdin, and stdin that is a terminal; without one the session
// goes on without a TTY, saying so unless quiet.
func newSession(streams IOStreams, stdin, tty, quiet bool) session {
	s := session{stdout: streams.Out, stderr: streams.ErrOut}
	if !stdin {
		return s
	}
	s.stdin = streams.In
	if !tty {
		return s
	}
	s.terminal = localTerminal(streams.In)
	if s.terminal == nil {
		if !quiet {
			fmt.Fprintln(streams.ErrOut, "Unable to use a TTY - input is not a terminal or the right kind of file")
		}
		return s
	}
	s.tty, s.stderr = true, nil
	return s
}

// query adds the session's stream parameters to q, as kubectl sends them.
func (s session) query(q url.Values) url.Values {
	if s.stdin != nil {
		q.Set("stdin", "true")
	}
	q.Set("stdout", "true")
	if s.stderr != nil {
		q.Set("stderr", "true")
	}
	if s.tty {
		q.Set("tty", "true")
	}
	return q
}

// run opens the session on the API server's path (pods/{name}/exec or
// attach) and streams until the command ends. In raw mode the terminal
// sends initialSizes first, then its size whenever it changes.
func (s session) run(ctx context.Context, c *client.Client, path string, query url.Values, initialSizes ...remotecommand.TerminalSize) error {
	u := c.URL(path, s.query(query))
	u.Scheme = map[string]string{"https": "wss", "http": "ws"}[u.Scheme]
	header := http.Header{"User-Agent": {c.Config().UserAgent}}
	if token := c.Config().Token; token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	conn, err := remotecommand.Dial(ctx, u.String(), c.TLSConfig(), header)
	if err != nil {
		return err
	}
	local := remotecommand.ClientStreams{Stdin: s.stdin, Stdout: s.stdout, Stderr: s.stderr}
	if s.terminal != nil {
		restore, err := s.terminal.makeRaw()
		if err != nil {
			conn.Close()
			return err
		}
		defer restore()
		sizes, stopWatching := s.terminal.watchSize(initialSizes)
		defer stopWatching()
		local.Resize = sizes
	}
	err = remotecommand.Stream(ctx, conn, local)
	var failure *api.Status
	if errors.As(err, &failure) {
		// The command could not run (the handshake went well): kubectl
		// prints the node's message as its own error, not as a server's.
		return errors.New(failure.Message)
	}
	return err
}

// terminal is the local terminal, when stdin is one.
type terminal struct {
	fd int
}

func localTerminal(in io.Reader) *terminal {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &terminal{fd: int(f.Fd())}
}

func (t *terminal) size() (remotecommand.TerminalSize, bool) {
	width, height, err := term.GetSize(t.fd)
	if err != nil || width <= 0 || height <= 0 {
		return remotecommand.TerminalSize{}, false
	}
	return remotecommand.TerminalSize{Width: uint16(width), Height: uint16(height)}, true
}

// makeRaw puts the terminal in raw mode: keys go to the remote terminal as
// typed (^C included) and its output is shown as it comes.
func (t *terminal) makeRaw() (restore func(), err error) {
	state, err := term.MakeRaw(t.fd)
	if err != nil {
		return nil, fmt.Errorf("putting the terminal in raw mode: %w", err)
	}
	return func() { term.Restore(t.fd, state) }, nil
}

// watchSize sends first (or the current size when first is empty), then
// the terminal's size each time it changes (SIGWINCH), until stop is
// called, which returns once the watching has stopped.
func (t *terminal) watchSize(first []remotecommand.TerminalSize) (sizes <-chan remotecommand.TerminalSize, stop func()) {
	if len(first) == 0 {
		if size, ok := t.size(); ok {
			first = []remotecommand.TerminalSize{size}
		}
	}
	out := make(chan remotecommand.TerminalSize, len(first))
	for _, size := range first {
		out <- size
	}
	changed := make(chan os.Signal, 1)
	signal.Notify(changed, syscall.SIGWINCH)
	stopping, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stopping:
				return
			case <-changed:
			}
			size, ok := t.size()
			if !ok {
				continue
			}
			select {
			case <-stopping:
				return
			case out <- size:
			}
		}
	}()
	return out, func() {
		signal.Stop(changed)
		close(stopping)
		<-stopped
	}
}

// podPath is the API path of a Pod (and, with a suffix, its subresources).
func podPath(namespace, name string) string {
	return api.ResourceFor(&api.Pod{}).Path(namespace, name)
}

// resolvePod finds the Pod an argument names: NAME or pod/NAME, or a
// Deployment or ReplicaSet (deploy/NAME) whose best Pod is used — the
// Running and Ready one first, then by name. It returns how many Pods
// the workload had to choose from.
func resolvePod(ctx context.Context, f *factory, c *client.Client, namespace, arg string) (*api.Pod, int, error) {
	kind, name, hasKind := strings.Cut(arg, "/")
	if !hasKind {
		kind, name = "pods", arg
	}
	r, err := lookupResource(f.scheme, kind)
	if err != nil {
		return nil, 0, err
	}
	if name == "" {
		return nil, 0, fmt.Errorf("arguments in resource/name form must have a single resource and name")
	}
	var selector *api.LabelSelector
	switch r.Kind {
	case "Pod":
		pod, err := client.For[api.Pod](c, namespace).Get(ctx, name)
		return pod, 1, err
	case "Deployment":
		d, err := client.For[api.Deployment](c, namespace).Get(ctx, name)
		if err != nil {
			return nil, 0, err
		}
		selector = d.Spec.Selector
	case "ReplicaSet":
		rs, err := client.For[api.ReplicaSet](c, namespace).Get(ctx, name)
		if err != nil {
			return nil, 0, err
		}
		selector = rs.Spec.Selector
	default:
		return nil, 0, fmt.Errorf("selector for %s not implemented", kindGroup(r))
	}
	list, err := client.For[api.Pod](c, namespace).List(ctx, client.ListOptions{LabelSelector: api.FormatLabelSelector(selector)})
	if err != nil {
		return nil, 0, err
	}
	pods := list.Items
	if len(pods) == 0 {
		return nil, 0, fmt.Errorf("no pods found for %s %q in namespace %q", kindGroup(r), name, namespace)
	}
	sort.SliceStable(pods, func(i, j int) bool {
		if a, b := isRunningAndReady(&pods[i]), isRunningAndReady(&pods[j]); a != b {
			return a
		}
		return pods[i].Name < pods[j].Name
	})
	return &pods[0], len(pods), nil
}

func isRunningAndReady(pod *api.Pod) bool {
	if pod.Status.Phase != api.PodRunning {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == api.PodReady {
			return c.Status == api.ConditionTrue
		}
	}
	return false
}

// defaultContainerAnnotation names the container kubectl picks by default.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// containerName is the container a command works on: the one asked for,
// else the Pod's default (its annotation, else its first container),
// saying which when the Pod has several, as kubectl does.
func containerName(pod *api.Pod, asked string, quiet bool, errOut io.Writer) (string, error) {
	if asked != "" {
		return asked, nil
	}
	if name := pod.Annotations[defaultContainerAnnotation]; name != "" {
		for _, c := range pod.Spec.Containers {
			if c.Name == name {
				return name, nil
			}
		}
	}
	if len(pod.Spec.Containers) == 0 {
		return "", fmt.Errorf("pod %s/%s does not have any containers", pod.Namespace, pod.Name)
	}
	name := pod.Spec.Containers[0].Name
	if len(pod.Spec.Containers) > 1 && !quiet {
		var all []string
		for _, c := range pod.Spec.Containers {
			all = append(all, c.Name)
		}
		for _, c := range pod.Spec.InitContainers {
			all = append(all, c.Name+" (init)")
		}
		fmt.Fprintf(errOut, "Defaulted container %q out of: %s\n", name, strings.Join(all, ", "))
	}
	return name, nil
}

// containerSpec is the spec of the Pod's container name, if it has one.
func containerSpec(pod *api.Pod, name string) *api.Container {
	for _, list := range [][]api.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}
