package kubectl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/api/client"
)

// GetOptions are the options of `kubectl-lite get`.
type GetOptions struct {
	f *factory

	output         string
	labelSelector  string
	fieldSelector  string
	allNamespaces  bool
	watch          bool
	watchOnly      bool
	noHeaders      bool
	showLabels     bool
	ignoreNotFound bool

	groups    []resourceGroup
	namespace string
}

func newGetCommand(f *factory) *cobra.Command {
	o := &GetOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "get [(-o|--output=)json|yaml|name|wide] (TYPE[,TYPE...] [NAME ...] | TYPE/NAME ...) [flags]",
		DisableFlagsInUseLine: true,
		Short:                 "Display one or many resources",
		Long: "Display one or many resources.\n\n" +
			"Prints a table of the most important information about the specified resources. " +
			"You can filter the list using a label selector and the --selector flag. " +
			"If the desired resource type is namespaced you will only see results in the current namespace unless you pass --all-namespaces.",
		Example: `  # List all pods in ps output format
  kubectl-lite get pods

  # List all pods in ps output format with more information (such as node name)
  kubectl-lite get pods -o wide

  # List deployments and services together
  kubectl-lite get deploy,svc

  # List a single service in JSON output format
  kubectl-lite get -o json svc/httpd-svc

  # Watch the pods of the httpd deployment
  kubectl-lite get pods -l run=httpd -w`,
		RunE: f.runE(o),
	}
	flags := cmd.Flags()
	flags.StringVarP(&o.output, "output", "o", "", "Output format. One of: (json, yaml, name, wide).")
	flags.StringVarP(&o.labelSelector, "selector", "l", "", "Selector (label query) to filter on, supports '=', '==', '!=', 'in', 'notin'.(e.g. -l key1=value1,key2=value2). Matching objects must satisfy all of the specified label constraints.")
	flags.StringVar(&o.fieldSelector, "field-selector", "", "Selector (field query) to filter on, supports '=', '==', and '!='.(e.g. --field-selector key1=value1,key2=value2). The server only supports a limited number of field queries per type.")
	flags.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "If present, list the requested object(s) across all namespaces. Namespace in current context is ignored even if specified with --namespace.")
	flags.BoolVarP(&o.watch, "watch", "w", false, "After listing/getting the requested object, watch for changes.")
	flags.BoolVar(&o.watchOnly, "watch-only", false, "Watch for changes to the requested object(s), without listing/getting first.")
	flags.BoolVar(&o.noHeaders, "no-headers", false, "When using the default or custom-column output format, don't print headers (default print headers).")
	flags.BoolVar(&o.showLabels, "show-labels", false, "When printing, show all labels as the last column (default hide labels column)")
	flags.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "If the requested object does not exist the command will return exit code 0.")
	return cmd
}

// Complete parses the resource arguments and finds the namespace.
func (o *GetOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageError(cmd, "You must specify the type of resource to get. Use \"%s api-resources\" for a complete list of supported resources.", cmd.Root().Name())
	}
	var err error
	if o.groups, err = parseResourceArgs(o.f.scheme, args); err != nil {
		return err
	}
	o.watch = o.watch || o.watchOnly
	o.namespace, _ = o.f.Namespace()
	return nil
}

// Validate checks flag combinations as kubectl does.
func (o *GetOptions) Validate() error {
	if err := validateOutput(o.output, outputTable, outputWide, outputName, outputJSON, outputYAML); err != nil {
		return err
	}
	for _, g := range o.groups {
		if len(g.names) > 0 && o.labelSelector != "" {
			return fmt.Errorf("name cannot be provided when a selector is specified")
		}
	}
	if o.watch {
		if len(o.groups) != 1 {
			return fmt.Errorf("you may only specify a single resource type")
		}
		if len(o.groups[0].names) > 1 {
			return fmt.Errorf("watch is only supported on individual resources and resource collections, but %d resources were found", len(o.groups[0].names))
		}
	}
	return nil
}

// Run prints the objects, then follows them with -w.
func (o *GetOptions) Run(ctx context.Context) error {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	if o.watch {
		return o.runWatch(ctx, c)
	}
	var errs errorList
	var fetched []fetchedGroup
	for _, g := range o.groups {
		fg, err := o.fetch(ctx, c, g)
		errs = append(errs, err...)
		fetched = append(fetched, fg)
	}

	out := &trackingWriter{out: o.f.streams.Out}
	switch o.output {
	case outputName, outputJSON, outputYAML:
		var objs []printedObject
		for _, fg := range fetched {
			for i, raw := range fg.raw {
				objs = append(objs, printedObject{resource: fg.resource, raw: raw, name: fg.objects[i].GetObjectMeta().Name})
			}
		}
		// An empty List is still printed; a failed single get prints nothing.
		if len(objs) > 0 || (o.output != outputName && len(errs) == 0 && !o.singleObjectRequested()) {
			if err := printObjects(out, o.output, objs, o.singleObjectRequested()); err != nil {
				return err
			}
		}
	default:
		opts := printOptions{
			wide:          o.output == outputWide,
			withNamespace: o.allNamespaces,
			withKind:      len(o.groups) > 1,
			showLabels:    o.showLabels,
			noHeaders:     o.noHeaders,
		}
		for _, fg := range fetched {
			// A blank line separates the tables of several types.
			sep := &separatorWriter{out: out, pending: out.written > 0 && !o.noHeaders}
			if err := printTable(sep, fg.resource, fg.objects, opts, o.f.now()); err != nil {
				return err
			}
		}
	}
	if out.written == 0 && len(errs) == 0 && !o.ignoreNotFound {
		o.printNothingFound()
	}
	return errs.orNil()
}

// singleObjectRequested is true for `get TYPE NAME` of one object, whose
// JSON is the object itself rather than a List.
func (o *GetOptions) singleObjectRequested() bool {
	return len(o.groups) == 1 && len(o.groups[0].names) == 1
}

func (o *GetOptions) printNothingFound() {
	namespaced := !o.allNamespaces
	for _, g := range o.groups {
		namespaced = namespaced && g.resource.Namespaced
	}
	if namespaced {
		fmt.Fprintf(o.f.streams.ErrOut, "No resources found in %s namespace.\n", o.namespace)
	} else {
		fmt.Fprintln(o.f.streams.ErrOut, "No resources found")
	}
}

// fetchedGroup is what was read for one resource group.
type fetchedGroup struct {
	resource *api.Resource
	raw      []json.RawMessage
	objects  []api.Object
	// resourceVersion is the list's, from which a watch continues.
	resourceVersion string
}

// namespaceFor is the namespace to read r in: "" lists every namespace
// (-A) and is the only choice for cluster-scoped resources.
func (o *GetOptions) namespaceFor(r *api.Resource) string {
	if !r.Namespaced || o.allNamespaces {
		return ""
	}
	return o.namespace
}

// fetch gets the named objects one by one, or lists the collection.
func (o *GetOptions) fetch(ctx context.Context, c *client.Client, g resourceGroup) (fetchedGroup, errorList) {
	fg := fetchedGroup{resource: g.resource}
	dyn := c.Resource(g.resource, o.namespaceFor(g.resource))
	if len(g.names) == 0 {
		body, err := dyn.List(ctx, client.ListOptions{LabelSelector: o.labelSelector, FieldSelector: o.fieldSelector})
		if err != nil {
			return fg, errorList{err}
		}
		list, err := decodeList(g.resource, body)
		if err != nil {
			return fg, errorList{err}
		}
		fg.raw, fg.objects, fg.resourceVersion = list.raw, list.objects, list.resourceVersion
		return fg, nil
	}
	var errs errorList
	for _, name := range g.names {
		raw, err := dyn.Get(ctx, name)
		if api.IsNotFound(err) && o.ignoreNotFound {
			continue
		}
		if err == nil {
			raw, err = withTypeMeta(g.resource, raw)
		}
		var obj api.Object
		if err == nil {
			obj, err = decodeObject(g.resource, raw)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fg.raw = append(fg.raw, raw)
		fg.objects = append(fg.objects, obj)
		fg.resourceVersion = obj.GetObjectMeta().ResourceVersion
	}
	return fg, errs
}

// runWatch prints the current objects (unless --watch-only), then one row
// or object per change until the server ends the stream or ctx ends.
func (o *GetOptions) runWatch(ctx context.Context, c *client.Client) error {
	g := o.groups[0]
	fieldSelector := o.fieldSelector
	if len(g.names) == 1 {
		fieldSelector = joinSelectors(fieldSelector, "metadata.name="+g.names[0])
	}
	fg, errs := o.fetch(ctx, c, g)
	if err := errs.orNil(); err != nil {
		return err
	}
	out := o.f.streams.Out
	table := newTablePrinter(out, g.resource, printOptions{
		wide:          o.output == outputWide,
		withNamespace: o.allNamespaces,
		showLabels:    o.showLabels,
		noHeaders:     o.noHeaders,
	})
	printed := 0
	emit := func(raw json.RawMessage, obj api.Object) error {
		defer func() { printed++ }()
		switch o.output {
		case outputName, outputJSON, outputYAML:
			if o.output == outputYAML && printed > 0 {
				fmt.Fprintln(out, "---")
			}
			return printObjects(out, o.output, []printedObject{{resource: g.resource, raw: raw, name: obj.GetObjectMeta().Name}}, true)
		default:
			return table.print([]api.Object{obj}, o.f.now())
		}
	}
	if !o.watchOnly {
		if len(fg.objects) == 0 {
			o.printNothingFound()
		}
		for i, obj := range fg.objects {
			if err := emit(fg.raw[i], obj); err != nil {
				return err
			}
		}
	}

	events, err := c.Resource(g.resource, o.namespaceFor(g.resource)).Watch(ctx, client.ListOptions{
		LabelSelector:   o.labelSelector,
		FieldSelector:   fieldSelector,
		ResourceVersion: fg.resourceVersion,
	})
	if err != nil {
		return err
	}
	for ev := range events {
		switch ev.Type {
		case api.Error:
			if ev.Err != nil {
				return ev.Err
			}
			return fmt.Errorf("watch failed: %s", string(ev.Object))
		case api.Bookmark:
			continue
		}
		raw, err := withTypeMeta(g.resource, ev.Object)
		if err != nil {
			return err
		}
		obj, err := decodeObject(g.resource, raw)
		if err != nil {
			return err
		}
		if err := emit(raw, obj); err != nil {
			return err
		}
	}
	return nil
}

// joinSelectors ANDs two selectors.
func joinSelectors(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "," + b
}

// trackingWriter counts what went out, to know whether anything was printed.
type trackingWriter struct {
	out     io.Writer
	written int
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	n, err := t.out.Write(p)
	t.written += n
	return n, err
}

// separatorWriter writes a blank line before its first output, if pending.
type separatorWriter struct {
	out     io.Writer
	pending bool
}

func (s *separatorWriter) Write(p []byte) (int, error) {
	if s.pending && len(p) > 0 {
		s.pending = false
		if _, err := io.WriteString(s.out, "\n"); err != nil {
			return 0, err
		}
	}
	return s.out.Write(p)
}
