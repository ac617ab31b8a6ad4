package kubectl

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/api/client"
)

// DeleteOptions are the options of `kubectl-lite delete`.
type DeleteOptions struct {
	f     *factory
	files fileOptions

	labelSelector  string
	all            bool
	allNamespaces  bool
	cascade        string
	gracePeriod    int
	now            bool
	force          bool
	wait           bool
	timeout        time.Duration
	ignoreNotFound bool
	output         string

	groups            []resourceGroup
	namespace         string
	explicitNamespace bool
	deleteOptions     client.DeleteOptions
}

func newDeleteCommand(f *factory) *cobra.Command {
	o := &DeleteOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "delete ([-f FILENAME]) | TYPE [(NAME | -l label | --all)]",
		DisableFlagsInUseLine: true,
		Short:                 "Delete resources by file names, stdin, resources and names, or by resources and label selector",
		Long: "Delete resources by file names, stdin, resources and names, or by resources and label selector.\n\n" +
			"By default the command waits until the objects are gone (--wait=true).",
		Example: `  # Delete the objects defined in httpd.yml
  kubectl-lite delete -f httpd.yml

  # Delete a pod without waiting for its graceful termination to finish
  kubectl-lite delete pod httpd-7d9f8-abcde --wait=false

  # Delete the pods of the httpd deployment
  kubectl-lite delete pods -l run=httpd

  # Delete all pods of the namespace, now
  kubectl-lite delete pods --all --now`,
		RunE: f.runE(o),
	}
	o.files.addFlags(cmd, "containing the resource to delete.")
	flags := cmd.Flags()
	flags.StringVarP(&o.labelSelector, "selector", "l", "", "Selector (label query) to filter on, supports '=', '==', and '!='.(e.g. -l key1=value1,key2=value2). Matching objects must satisfy all of the specified label constraints.")
	flags.BoolVar(&o.all, "all", false, "Delete all resources, in the namespace of the specified resource types.")
	flags.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "If present, list the requested object(s) across all namespaces. Namespace in current context is ignored even if specified with --namespace.")
	flags.StringVar(&o.cascade, "cascade", "background", `Must be "background", "orphan", or "foreground". Selects the deletion cascading strategy for the dependents (e.g. Pods created by a ReplicationController). Defaults to background.`)
	flags.Lookup("cascade").NoOptDefVal = "background"
	flags.IntVar(&o.gracePeriod, "grace-period", -1, "Period of time in seconds given to the resource to terminate gracefully. Ignored if negative. Set to 1 for immediate shutdown. Can only be set to 0 when --force is true (force deletion).")
	flags.BoolVar(&o.now, "now", false, "If true, resources are signaled for immediate shutdown (same as --grace-period=1).")
	flags.BoolVar(&o.force, "force", false, "If true, immediately remove resources from API and bypass graceful deletion. Note that immediate deletion of some resources may result in inconsistency or data loss and requires confirmation.")
	flags.BoolVar(&o.wait, "wait", true, "If true, wait for resources to be gone before returning. This waits for finalizers.")
	flags.DurationVar(&o.timeout, "timeout", 0, "The length of time to wait before giving up on a delete, zero means wait forever")
	flags.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "Treat \"resource not found\" as a successful delete. Defaults to \"true\" when --all is specified.")
	flags.StringVarP(&o.output, "output", "o", "", "Output mode. Use \"-o name\" for shorter output (resource/name).")
	return cmd
}

// Complete parses the arguments and turns the flags into delete options.
func (o *DeleteOptions) Complete(cmd *cobra.Command, args []string) error {
	var err error
	if o.groups, err = parseResourceArgs(o.f.scheme, args); err != nil {
		return err
	}
	o.namespace, o.explicitNamespace = o.f.Namespace()
	if o.all && !flagChanged(cmd.Flags(), "ignore-not-found") {
		o.ignoreNotFound = true
	}
	cascade := o.cascade
	// The old boolean values still work, with kubectl's warning.
	if replacement, ok := map[string]string{"true": "background", "false": "orphan"}[cascade]; ok {
		fmt.Fprintf(o.f.streams.ErrOut, "warning: --cascade=%s is deprecated (boolean value) and can be replaced with --cascade=%s.\n", cascade, replacement)
		cascade = replacement
	}
	switch cascade {
	case "background":
		o.deleteOptions.PropagationPolicy = "Background"
	case "foreground":
		o.deleteOptions.PropagationPolicy = "Foreground"
	case "orphan":
		o.deleteOptions.PropagationPolicy = "Orphan"
	default:
		return fmt.Errorf(`invalid cascade value (%v). Must be "background", "foreground", or "orphan"`, o.cascade)
	}
	grace := o.gracePeriod
	if o.now {
		grace = 1
	}
	if o.force && grace < 0 {
		grace = 0
	}
	if grace >= 0 {
		o.deleteOptions.GracePeriodSeconds = api.Ptr(int64(grace))
	}
	return nil
}

// Validate checks that exactly one way of choosing objects is used.
func (o *DeleteOptions) Validate() error {
	if err := validateOutput(o.output, "", outputName); err != nil {
		return err
	}
	if o.now && o.gracePeriod >= 0 {
		return fmt.Errorf("--now and --grace-period cannot be specified together")
	}
	if o.gracePeriod == 0 && !o.force {
		return fmt.Errorf("--grace-period=0 must have --force specified")
	}
	hasFiles := len(o.files.filenames) > 0
	switch {
	case hasFiles && len(o.groups) > 0:
		return fmt.Errorf("cannot specify both resource arguments and -f")
	case !hasFiles && len(o.groups) == 0:
		return fmt.Errorf("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
	}
	for _, g := range o.groups {
		hasNames := len(g.names) > 0
		switch {
		case hasNames && (o.all || o.labelSelector != ""):
			return fmt.Errorf("name cannot be provided when a selector or --all is specified")
		case !hasNames && !o.all && o.labelSelector == "":
			return fmt.Errorf("resource(s) were provided, but no name was specified")
		}
	}
	if o.all && o.labelSelector != "" {
		return fmt.Errorf("cannot set --all and --selector at the same time")
	}
	return nil
}

// deletion is one object to delete.
type deletion struct {
	resource *api.Resource
	ns, name string
	source   string // the file it came from, for messages
}

// Run deletes every selected object, printing `pod "x" deleted` for each,
// then waits until they are gone.
func (o *DeleteOptions) Run(ctx context.Context) error {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	targets, errs := o.targets(ctx, c)
	if len(targets) == 0 && len(errs) == 0 {
		fmt.Fprintln(o.f.streams.Out, "No resources found")
		return nil
	}
	type deleted struct {
		deletion
		uid string
	}
	var gone []deleted
	for _, t := range targets {
		answer, err := c.Resource(t.resource, t.ns).Delete(ctx, t.name, o.deleteOptions)
		if api.IsNotFound(err) && o.ignoreNotFound {
			continue
		}
		if err != nil {
			errs = append(errs, withSource("deleting", t.source, err))
			continue
		}
		if o.output == outputName {
			fmt.Fprintln(o.f.streams.Out, objectName(t.resource, t.name))
		} else {
			fmt.Fprintf(o.f.streams.Out, "%s deleted\n", quotedName(t.resource, t.name))
		}
		// The answer is the object (deletion pending) or a Status (gone).
		gone = append(gone, deleted{deletion: t, uid: uidOf(answer)})
	}
	if o.wait {
		waitCtx := ctx
		if o.timeout > 0 {
			var cancel context.CancelFunc
			waitCtx, cancel = context.WithTimeout(ctx, o.timeout)
			defer cancel()
		}
		for _, d := range gone {
			if err := waitForDeletion(waitCtx, c.Resource(d.resource, d.ns), d.name, d.uid); err != nil {
				if waitCtx.Err() != nil {
					err = fmt.Errorf("timed out waiting for the condition on %s/%s", d.resource.Plural, d.name)
				}
				errs = append(errs, err)
			}
		}
	}
	return errs.orNil()
}

// targets lists what to delete: the documents of -f, the named objects, or
// the objects matching -l or --all.
func (o *DeleteOptions) targets(ctx context.Context, c *client.Client) ([]deletion, errorList) {
	var targets []deletion
	var errs errorList
	if len(o.files.filenames) > 0 {
		docs, parseErrs := readManifests(o.files, o.f.streams.In)
		errs = append(errs, parseErrs...)
		for _, doc := range docs {
			resolved, err := doc.resolve(o.f.scheme, o.namespace, o.explicitNamespace)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			targets = append(targets, deletion{resource: resolved.resource, ns: resolved.ns, name: resolved.name, source: doc.source})
		}
		return targets, errs
	}
	for _, g := range o.groups {
		ns := o.namespace
		if !g.resource.Namespaced {
			ns = ""
		}
		if len(g.names) > 0 {
			for _, name := range g.names {
				targets = append(targets, deletion{resource: g.resource, ns: ns, name: name})
			}
			continue
		}
		if o.allNamespaces {
			ns = ""
		}
		body, err := c.Resource(g.resource, ns).List(ctx, client.ListOptions{LabelSelector: o.labelSelector})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		list, err := decodeList(g.resource, body)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, obj := range list.objects {
			meta := obj.GetObjectMeta()
			targets = append(targets, deletion{resource: g.resource, ns: meta.Namespace, name: meta.Name})
		}
	}
	return targets, errs
}

// uidOf reads metadata.uid of an object's JSON ("" for a Status).
func uidOf(raw []byte) string {
	obj, err := decodeJSONObject(raw)
	if err != nil || obj["kind"] == "Status" {
		return ""
	}
	meta, _ := obj["metadata"].(map[string]any)
	uid, _ := meta["uid"].(string)
	return uid
}

// waitForDeletion blocks until the object is gone (or replaced by a new
// object of the same name), by watching it.
func waitForDeletion(ctx context.Context, dyn *client.Dynamic, name, uid string) error {
	backoff := initialRewatchPause
	for {
		raw, err := dyn.Get(ctx, name)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if uid != "" && uidOf(raw) != uid {
			return nil // a new object took the name: ours is gone
		}
		events, err := dyn.Watch(ctx, client.ListOptions{
			FieldSelector:   "metadata.name=" + name,
			ResourceVersion: resourceVersionOf(raw),
		})
		if err != nil {
			return err
		}
		for ev := range events {
			if ev.Type == api.Deleted && objectNameOf(ev.Object) == name {
				return nil
			}
			if ev.Type == api.Error && ev.Err != nil && !api.IsGone(ev.Err) {
				return ev.Err
			}
		}
		// The stream ended (server timeout, compaction): look again.
		if err := pause(ctx, &backoff); err != nil {
			return err
		}
	}
}

// objectNameOf reads metadata.name of an object's JSON.
func objectNameOf(raw []byte) string {
	obj, err := decodeJSONObject(raw)
	if err != nil {
		return ""
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	return name
}

// initialRewatchPause is the first pause before watching again after a
// stream ended; it doubles up to maxRewatchPause, so that a server that
// closes streams at once is not hammered.
const (
	initialRewatchPause = 100 * time.Millisecond
	maxRewatchPause     = 5 * time.Second
)

// pause waits *backoff (or until ctx ends) and doubles it.
func pause(ctx context.Context, backoff *time.Duration) error {
	timer := time.NewTimer(*backoff)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	}
	*backoff = min(2**backoff, maxRewatchPause)
	return nil
}
