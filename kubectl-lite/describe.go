package kubectl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"kubelite/api"
	"kubelite/api/client"
)

// DescribeOptions are the options of `kubectl-lite describe`.
type DescribeOptions struct {
	f *factory

	labelSelector string
	allNamespaces bool
	showEvents    bool

	groups []resourceGroup
	// prefixMatch is set for `describe TYPE NAME`: when NAME does not
	// exist, describe every object whose name starts with it.
	prefixMatch bool
	namespace   string
}

func newDescribeCommand(f *factory) *cobra.Command {
	o := &DescribeOptions{f: f}
	cmd := &cobra.Command{
		Use:                   "describe (TYPE [NAME_PREFIX | -l label] | TYPE/NAME)",
		DisableFlagsInUseLine: true,
		Short:                 "Show details of a specific resource or group of resources",
		Long: "Show details of a specific resource or group of resources.\n\n" +
			"Print a detailed description of the selected resources, including related resources such as events or controllers. " +
			"You may select a single object by name, all objects of that type, provide a name prefix, or label selector.",
		Example: `  # Describe a service, with the endpoints behind it
  kubectl-lite describe service httpd-svc

  # Describe all pods whose names start with httpd
  kubectl-lite describe pods httpd

  # Describe a deployment
  kubectl-lite describe deploy/httpd`,
		RunE: f.runE(o),
	}
	cmd.Flags().StringVarP(&o.labelSelector, "selector", "l", "", "Selector (label query) to filter on, supports '=', '==', and '!='.(e.g. -l key1=value1,key2=value2). Matching objects must satisfy all of the specified label constraints.")
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "If present, list the requested object(s) across all namespaces. Namespace in current context is ignored even if specified with --namespace.")
	cmd.Flags().BoolVar(&o.showEvents, "show-events", true, "If true, display events related to the described object.")
	return cmd
}

// Complete parses the resource arguments and finds the namespace.
func (o *DescribeOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageError(cmd, "You must specify the type of resource to describe. Use \"%s api-resources\" for a complete list of supported resources.", cmd.Root().Name())
	}
	var err error
	if o.groups, err = parseResourceArgs(o.f.scheme, args); err != nil {
		return err
	}
	o.prefixMatch = len(args) == 2 && !strings.Contains(args[0], "/") && !strings.Contains(args[0], ",")
	o.namespace, _ = o.f.Namespace()
	return nil
}

// Validate checks flag combinations.
func (o *DescribeOptions) Validate() error {
	for _, g := range o.groups {
		if len(g.names) > 0 && o.labelSelector != "" {
			return fmt.Errorf("name cannot be provided when a selector is specified")
		}
	}
	return nil
}

// Run describes every selected object, separated by blank lines.
func (o *DescribeOptions) Run(ctx context.Context) error {
	c, err := o.f.Client()
	if err != nil {
		return err
	}
	out := &describeOutput{out: o.f.streams.Out}
	var errs errorList
	for _, g := range o.groups {
		ns := o.namespace
		if !g.resource.Namespaced || (o.allNamespaces && len(g.names) == 0) {
			ns = ""
		}
		dyn := c.Resource(g.resource, ns)
		if len(g.names) == 0 {
			body, err := dyn.List(ctx, client.ListOptions{LabelSelector: o.labelSelector})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			list, err := decodeList(g.resource, body)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if len(list.objects) == 0 {
				if ns == "" {
					fmt.Fprintln(o.f.streams.ErrOut, "No resources found")
				} else {
					fmt.Fprintf(o.f.streams.ErrOut, "No resources found in %s namespace.\n", ns)
				}
			}
			for _, obj := range list.objects {
				text, err := o.describe(ctx, c, g.resource, obj)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out.print(text)
			}
			continue
		}
		for _, name := range g.names {
			raw, err := dyn.Get(ctx, name)
			if api.IsNotFound(err) && o.prefixMatch {
				err = o.describePrefix(ctx, c, dyn, g.resource, name, err)
				if err != nil {
					errs = append(errs, err)
				}
				continue
			}
			var obj api.Object
			if err == nil {
				obj, err = decodeObject(g.resource, raw)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			text, err := o.describe(ctx, c, g.resource, obj)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out.print(text)
		}
	}
	return errs.orNil()
}

// describePrefix describes the objects whose names start with prefix, or
// returns notFound when there are none (kubectl's DescribeMatchingResources).
func (o *DescribeOptions) describePrefix(ctx context.Context, c *client.Client, dyn *client.Dynamic, r *api.Resource, prefix string, notFound error) error {
	body, err := dyn.List(ctx, client.ListOptions{})
	if err != nil {
		return err
	}
	list, err := decodeList(r, body)
	if err != nil {
		return err
	}
	found := false
	for _, obj := range list.objects {
		if !strings.HasPrefix(obj.GetObjectMeta().Name, prefix) {
			continue
		}
		found = true
		text, err := o.describe(ctx, c, r, obj)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.f.streams.Out, "%s\n", text)
	}
	if !found {
		return notFound
	}
	return nil
}

// describeOutput separates several descriptions with blank lines.
type describeOutput struct {
	out   io.Writer
	count int
}

func (d *describeOutput) print(text string) {
	if d.count > 0 {
		fmt.Fprint(d.out, "\n\n")
	}
	fmt.Fprint(d.out, text)
	d.count++
}

// describe reads what the describer of obj's kind needs and runs it.
func (o *DescribeOptions) describe(ctx context.Context, c *client.Client, r *api.Resource, obj api.Object) (string, error) {
	now := o.f.now()
	var events *api.List[api.Event]
	if o.showEvents {
		events = searchEvents(ctx, c, o.f.scheme, r, obj)
	}
	switch obj := obj.(type) {
	case *api.Pod:
		return describePod(obj, events, now), nil
	case *api.Service:
		var endpoints *api.Endpoints
		if raw, err := c.Resource(o.f.scheme.For(&api.Endpoints{}), obj.Namespace).Get(ctx, obj.Name); err == nil {
			endpoints = &api.Endpoints{}
			if err := json.Unmarshal(raw, endpoints); err != nil {
				return "", fmt.Errorf("decoding endpoints %q: %w", obj.Name, err)
			}
		}
		return describeService(obj, endpoints, events, now), nil
	case *api.Deployment:
		oldRSs, newRS, err := o.deploymentReplicaSets(ctx, c, obj)
		if err != nil {
			return "", err
		}
		return describeDeployment(obj, oldRSs, newRS, events, now), nil
	case *api.ReplicaSet:
		pods, err := listOwnedPods(ctx, c, o.f.scheme, obj.Namespace, obj.Spec.Selector, obj.UID)
		if err != nil {
			return "", err
		}
		return describeReplicaSet(obj, countPodPhases(pods), events, now), nil
	case *api.Node:
		pods, err := nodePods(ctx, c, o.f.scheme, obj.Name)
		if err != nil {
			return "", err
		}
		var lease *api.Lease
		if got, err := getTyped[api.Lease](ctx, c, o.f.scheme, api.NamespaceNodeLease, obj.Name); err == nil {
			lease = got
		}
		return describeNode(obj, pods, lease, events, now), nil
	case *api.Namespace:
		return describeNamespace(obj), nil
	case *api.Endpoints:
		return describeEndpoints(obj, events, now), nil
	default:
		return describeObject(obj, events, now), nil
	}
}

// getTyped reads one object into its Go type.
func getTyped[T any, PT interface {
	*T
	api.Object
}](ctx context.Context, c *client.Client, scheme *api.Scheme, ns, name string) (PT, error) {
	obj := PT(new(T))
	raw, err := c.Resource(scheme.For(obj), ns).Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, fmt.Errorf("decoding %s %q: %w", api.KindOf(obj), name, err)
	}
	return obj, nil
}

// listTyped lists objects into their Go type.
func listTyped[T any, PT interface {
	*T
	api.Object
}](ctx context.Context, c *client.Client, scheme *api.Scheme, ns string, opts client.ListOptions) ([]T, error) {
	r := scheme.For(PT(new(T)))
	body, err := c.Resource(r, ns).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	var list api.List[T]
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", r.ListKind(), err)
	}
	return list.Items, nil
}

// searchEvents lists the events about obj, as kubectl's describers do;
// nil (no Events section) when they cannot be read.
func searchEvents(ctx context.Context, c *client.Client, scheme *api.Scheme, r *api.Resource, obj api.Object) *api.List[api.Event] {
	meta := obj.GetObjectMeta()
	selector := "involvedObject.name=" + meta.Name
	if r.Namespaced {
		selector += ",involvedObject.namespace=" + meta.Namespace
		if meta.UID != "" {
			selector += ",involvedObject.uid=" + meta.UID
		}
	}
	ns := ""
	if r.Namespaced {
		ns = meta.Namespace
	}
	events, err := listTyped[api.Event](ctx, c, scheme, ns, client.ListOptions{FieldSelector: selector})
	if err != nil {
		return nil
	}
	// The server filters already; filter again so that the kind matches too.
	matched := &api.List[api.Event]{Items: []api.Event{}}
	for _, e := range events {
		ref := e.InvolvedObject
		if ref.Name != meta.Name || (ref.Kind != "" && ref.Kind != r.Kind) {
			continue
		}
		if r.Namespaced && ref.Namespace != meta.Namespace {
			continue
		}
		matched.Items = append(matched.Items, e)
	}
	return matched
}

// deploymentReplicaSets finds the replica sets a deployment owns: the new
// one (whose pod template is the deployment's) and the old ones that still
// have replicas.
func (o *DescribeOptions) deploymentReplicaSets(ctx context.Context, c *client.Client, d *api.Deployment) (oldRSs []*api.ReplicaSet, newRS *api.ReplicaSet, err error) {
	all, err := listTyped[api.ReplicaSet](ctx, c, o.f.scheme, d.Namespace, client.ListOptions{LabelSelector: selectorString(d.Spec.Selector)})
	if err != nil {
		return nil, nil, err
	}
	var owned []*api.ReplicaSet
	for i := range all {
		if ref := all[i].ControllerRef(); ref != nil && ref.UID == d.UID {
			owned = append(owned, &all[i])
		}
	}
	newRS = findNewReplicaSet(d, owned)
	for _, rs := range owned {
		if rs != newRS && int32OrZero(rs.Spec.Replicas) != 0 {
			oldRSs = append(oldRSs, rs)
		}
	}
	return oldRSs, newRS, nil
}

// findNewReplicaSet is the oldest owned replica set whose pod template
// equals the deployment's, ignoring the pod-template-hash label.
func findNewReplicaSet(d *api.Deployment, owned []*api.ReplicaSet) *api.ReplicaSet {
	sorted := append([]*api.ReplicaSet(nil), owned...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return sorted[i].CreationTimestamp.Before(sorted[j].CreationTimestamp.Time)
	})
	want := templateWithoutHash(d.Spec.Template)
	for _, rs := range sorted {
		if templateWithoutHash(rs.Spec.Template) == want {
			return rs
		}
	}
	return nil
}

func templateWithoutHash(t api.PodTemplateSpec) string {
	t = api.DeepCopy(t)
	delete(t.Labels, "pod-template-hash")
	if len(t.Labels) == 0 {
		t.Labels = nil
	}
	data, _ := json.Marshal(t)
	return string(data)
}

// listOwnedPods lists the pods that a controller with the given selector
// and uid owns.
func listOwnedPods(ctx context.Context, c *client.Client, scheme *api.Scheme, ns string, selector *api.LabelSelector, uid string) ([]api.Pod, error) {
	pods, err := listTyped[api.Pod](ctx, c, scheme, ns, client.ListOptions{LabelSelector: selectorString(selector)})
	if err != nil {
		return nil, err
	}
	var owned []api.Pod
	for _, p := range pods {
		if ref := p.ControllerRef(); ref != nil && ref.UID == uid {
			owned = append(owned, p)
		}
	}
	return owned, nil
}

// nodePods lists the pods bound to a node that have not terminated.
func nodePods(ctx context.Context, c *client.Client, scheme *api.Scheme, node string) ([]api.Pod, error) {
	pods, err := listTyped[api.Pod](ctx, c, scheme, "", client.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		// A server without this field selector: filter here instead.
		if pods, err = listTyped[api.Pod](ctx, c, scheme, "", client.ListOptions{}); err != nil {
			return nil, err
		}
	}
	var running []api.Pod
	for _, p := range pods {
		if p.Spec.NodeName == node && p.Status.Phase != api.PodSucceeded && p.Status.Phase != api.PodFailed {
			running = append(running, p)
		}
	}
	return running, nil
}
