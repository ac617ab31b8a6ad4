package kubectl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// LogsOptions are the options of `kubectl-lite logs`.
type LogsOptions struct {
	f *factory

	follow     bool
	previous   bool
	timestamps bool
	tail       int64
	container  string

	target    string // POD or TYPE/NAME
	namespace string
}

func newLogsCommand(f *factory) *cobra.Command {
	o := &LogsOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]",
		DisableFlagsInUseLine: true,
		Short:                 "Print the logs for a container in a pod",
		Long: "Print the logs for a container in a pod or specified resource. " +
			"If the pod has only one container, the container name is optional.",
		Example: `  # Return snapshot logs from pod httpd with only one container
  kubectl-lite logs httpd

  # Begin streaming the logs of the httpd container in pod web-1
  kubectl-lite logs -f -c httpd web-1

  # Display only the most recent 20 lines of output in pod httpd
  kubectl-lite logs --tail=20 httpd

  # Show the logs of the previous, terminated instance of the container
  kubectl-lite logs -p httpd

  # Return snapshot logs from the first pod of the httpd deployment
  kubectl-lite logs deployment/httpd`,
		RunE: f.runE(o),
	}
	flags := cmd.Flags()
	flags.BoolVarP(&o.follow, "follow", "f", false, "Specify if the logs should be streamed.")
	flags.BoolVarP(&o.previous, "previous", "p", false, "If true, print the logs for the previous instance of the container in a pod if it exists.")
	flags.BoolVar(&o.timestamps, "timestamps", false, "Include timestamps on each line in the log output")
	flags.Int64Var(&o.tail, "tail", -1, "Lines of recent log file to display. Defaults to -1, showing all log lines.")
	flags.StringVarP(&o.container, "container", "c", "", "Print the logs of this container")
	return cmd
}

// Complete reads POD or TYPE/NAME, and the container given inline
// (`logs POD CONTAINER`, kubectl's older form).
func (o *LogsOptions) Complete(cmd *cobra.Command, args []string) error {
	switch len(args) {
	case 0:
		return usageError(cmd, "expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command")
	case 1:
	case 2:
		if o.container != "" {
			return usageError(cmd, "only one of -c or an inline [CONTAINER] arg is allowed")
		}
		o.container = args[1]
	default:
		return usageError(cmd, "expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command")
	}
	o.target = args[0]
	o.namespace, _ = o.f.Namespace()
	return nil
}

// Validate checks the flags.
func (o *LogsOptions) Validate() error {
	if o.tail < -1 {
		return fmt.Errorf("--tail must be greater than or equal to -1")
	}
	return nil
}

// Run streams the container's log from the API server to Out.
func (o *LogsOptions) Run(ctx context.Context) error {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	pod, candidates, err := resolvePod(ctx, o.f, c, o.namespace, o.target)
	if err != nil {
		return err
	}
	if candidates > 1 {
		fmt.Fprintf(o.f.streams.ErrOut, "Found %d pods, using pod/%s\n", candidates, pod.Name)
	}
	container, err := containerName(pod, o.container, false, o.f.streams.ErrOut)
	if err != nil {
		return err
	}
	query := url.Values{"container": {container}}
	if o.follow {
		query.Set("follow", "true")
	}
	if o.previous {
		query.Set("previous", "true")
	}
	if o.timestamps {
		query.Set("timestamps", "true")
	}
	if o.tail >= 0 {
		query.Set("tailLines", strconv.FormatInt(o.tail, 10))
	}
	stream, err := c.Stream(ctx, http.MethodGet, podPath(pod.Namespace, pod.Name)+"/log", query)
	if err != nil {
		return err
	}
	defer stream.Close()
	if _, err := io.Copy(o.f.streams.Out, stream); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading the logs of pod %s: %w", pod.Name, err)
	}
	return nil // an interrupted -f ends quietly, as ^C on kubectl does
}
