package kubectl

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"kubelite/api"
)

// This file holds the table printers of `get`: pure functions from API
// objects to cells, with kubectl's columns and wording
// (pkg/printers/internalversion/printers.go).

// column is one table column; wide columns show only with -o wide.
type column struct {
	header string
	wide   bool
}

// tableSpec describes the table of one kind.
type tableSpec struct {
	columns []column
	// nameColumn is the index of the column that shows the object name
	// (prefixed with its kind when several kinds are printed), -1 if none.
	nameColumn int
	// row returns every cell of obj, wide ones included; wide also
	// changes some narrow cells (an untruncated EXTERNAL-IP).
	row func(obj api.Object, now time.Time, wide bool) []string
}

func cols(headers ...string) []column {
	out := make([]column, len(headers))
	for i, h := range headers {
		out[i] = column{header: h}
	}
	return out
}

func wideCols(headers ...string) []column {
	out := cols(headers...)
	for i := range out {
		out[i].wide = true
	}
	return out
}

// tableFor returns the table of a kind; unknown kinds get NAME and AGE.
func tableFor(kind string) tableSpec {
	switch kind {
	case "Pod":
		return tableSpec{
			columns:    append(cols("NAME", "READY", "STATUS", "RESTARTS", "AGE"), wideCols("IP", "NODE", "NOMINATED NODE", "READINESS GATES")...),
			nameColumn: 0,
			row:        func(o api.Object, now time.Time, wide bool) []string { return podRow(o.(*api.Pod), now) },
		}
	case "Service":
		return tableSpec{
			columns:    append(cols("NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"), wideCols("SELECTOR")...),
			nameColumn: 0,
			row:        func(o api.Object, now time.Time, wide bool) []string { return serviceRow(o.(*api.Service), now, wide) },
		}
	case "Deployment":
		return tableSpec{
			columns:    append(cols("NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"), wideCols("CONTAINERS", "IMAGES", "SELECTOR")...),
			nameColumn: 0,
			row:        func(o api.Object, now time.Time, wide bool) []string { return deploymentRow(o.(*api.Deployment), now) },
		}
	case "ReplicaSet":
		return tableSpec{
			columns:    append(cols("NAME", "DESIRED", "CURRENT", "READY", "AGE"), wideCols("CONTAINERS", "IMAGES", "SELECTOR")...),
			nameColumn: 0,
			row:        func(o api.Object, now time.Time, wide bool) []string { return replicaSetRow(o.(*api.ReplicaSet), now) },
		}
	case "Endpoints":
		return tableSpec{
			columns:    cols("NAME", "ENDPOINTS", "AGE"),
			nameColumn: 0,
			row: func(o api.Object, now time.Time, wide bool) []string {
				ep := o.(*api.Endpoints)
				return []string{ep.Name, formatEndpoints(ep, nil), age(ep.CreationTimestamp.Time, now)}
			},
		}
	case "Node":
		return tableSpec{
			columns:    append(cols("NAME", "STATUS", "ROLES", "AGE", "VERSION"), wideCols("INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME")...),
			nameColumn: 0,
			row:        func(o api.Object, now time.Time, wide bool) []string { return nodeRow(o.(*api.Node), now) },
		}
	case "Namespace":
		return tableSpec{
			columns:    cols("NAME", "STATUS", "AGE"),
			nameColumn: 0,
			row: func(o api.Object, now time.Time, wide bool) []string {
				ns := o.(*api.Namespace)
				return []string{ns.Name, ns.Status.Phase, age(ns.CreationTimestamp.Time, now)}
			},
		}
	case "Event":
		return tableSpec{
			columns: []column{{header: "LAST SEEN"}, {header: "TYPE"}, {header: "REASON"}, {header: "OBJECT"},
				{header: "SUBOBJECT", wide: true}, {header: "SOURCE", wide: true}, {header: "MESSAGE"},
				{header: "FIRST SEEN", wide: true}, {header: "COUNT", wide: true}, {header: "NAME", wide: true}},
			nameColumn: 9,
			row:        func(o api.Object, now time.Time, wide bool) []string { return eventRow(o.(*api.Event), now) },
		}
	case "Lease":
		return tableSpec{
			columns:    cols("NAME", "HOLDER", "AGE"),
			nameColumn: 0,
			row: func(o api.Object, now time.Time, wide bool) []string {
				l := o.(*api.Lease)
				holder := ""
				if l.Spec.HolderIdentity != nil {
					holder = *l.Spec.HolderIdentity
				}
				return []string{l.Name, holder, age(l.CreationTimestamp.Time, now)}
			},
		}
	default:
		return tableSpec{
			columns:    cols("NAME", "AGE"),
			nameColumn: 0,
			row: func(o api.Object, now time.Time, wide bool) []string {
				m := o.GetObjectMeta()
				return []string{m.Name, age(m.CreationTimestamp.Time, now)}
			},
		}
	}
}

// printOptions are the get flags that shape a table.
type printOptions struct {
	wide          bool
	withNamespace bool // -A: a NAMESPACE column first
	withKind      bool // several kinds printed: names as "pod/x"
	showLabels    bool
	noHeaders     bool
}

// tablePrinter prints the rows of one resource, aligned as kubectl's
// tabwriter aligns them (minimum width 6, padding 3). It remembers column
// widths across calls, so that the rows of a watch line up with the table
// printed before them.
type tablePrinter struct {
	out      io.Writer
	resource *api.Resource
	spec     tableSpec
	opts     printOptions
	widths   []int
	// headerDone is set once the header line is out.
	headerDone bool
}

// Column layout of kubectl's table writer.
const (
	tableMinWidth = 6
	tablePadding  = 3
)

func newTablePrinter(out io.Writer, r *api.Resource, opts printOptions) *tablePrinter {
	if !r.Namespaced {
		opts.withNamespace = false
	}
	return &tablePrinter{out: out, resource: r, spec: tableFor(r.Kind), opts: opts}
}

// printTable prints objs as one table: the pure entry point of `get`.
func printTable(out io.Writer, r *api.Resource, objs []api.Object, opts printOptions, now time.Time) error {
	return newTablePrinter(out, r, opts).print(objs, now)
}

// print writes the header (once) and one row per object.
func (p *tablePrinter) print(objs []api.Object, now time.Time) error {
	var lines [][]string
	if !p.headerDone && !p.opts.noHeaders && len(objs) > 0 {
		var headers []string
		if p.opts.withNamespace {
			headers = append(headers, "NAMESPACE")
		}
		for _, c := range p.spec.columns {
			if !c.wide || p.opts.wide {
				headers = append(headers, c.header)
			}
		}
		if p.opts.showLabels {
			headers = append(headers, "LABELS")
		}
		lines = append(lines, headers)
		p.headerDone = true
	}
	for _, obj := range objs {
		lines = append(lines, p.cells(obj, now))
	}
	return p.writeAligned(lines)
}

func (p *tablePrinter) cells(obj api.Object, now time.Time) []string {
	meta := obj.GetObjectMeta()
	all := p.spec.row(obj, now, p.opts.wide)
	var cells []string
	if p.opts.withNamespace {
		cells = append(cells, meta.Namespace)
	}
	for i, c := range p.spec.columns {
		if c.wide && !p.opts.wide {
			continue
		}
		cell := all[i]
		if i == p.spec.nameColumn && p.opts.withKind {
			cell = objectName(p.resource, cell)
		}
		cells = append(cells, cell)
	}
	if p.opts.showLabels {
		cells = append(cells, formatLabels(meta.Labels))
	}
	for i, cell := range cells {
		// A cell is cut at its first line break, as kubectl does.
		if cut := strings.IndexAny(cell, "\f\n\r"); cut >= 0 {
			cell = cell[:cut] + "..."
		}
		cells[i] = terminalEscaper.Replace(cell)
	}
	return cells
}

// writeAligned pads every cell but the last of each line to its column's
// width: the widest cell seen so far plus the padding.
func (p *tablePrinter) writeAligned(lines [][]string) error {
	for _, line := range lines {
		for i := 0; i < len(line)-1; i++ {
			if i == len(p.widths) {
				p.widths = append(p.widths, tableMinWidth)
			}
			p.widths[i] = max(p.widths[i], utf8.RuneCountInString(line[i])+tablePadding)
		}
	}
	var b strings.Builder
	for _, line := range lines {
		for i, cell := range line {
			b.WriteString(cell)
			if i < len(line)-1 {
				b.WriteString(strings.Repeat(" ", p.widths[i]-utf8.RuneCountInString(cell)))
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(p.out, b.String())
	return err
}

// ---- rows ----

func podRow(pod *api.Pod, now time.Time) []string {
	restarts := 0
	totalContainers := len(pod.Spec.Containers)
	readyContainers := 0
	var lastRestart time.Time

	reason := pod.Status.Phase
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}

	noteRestart := func(cs api.ContainerStatus) {
		restarts += int(cs.RestartCount)
		if t := cs.LastState.Terminated; t != nil && t.FinishedAt.After(lastRestart) {
			lastRestart = t.FinishedAt.Time
		}
	}

	initializing := false
	for i, cs := range pod.Status.InitContainerStatuses {
		noteRestart(cs)
		switch {
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			continue
		case cs.State.Terminated != nil:
			t := cs.State.Terminated
			switch {
			case t.Reason != "":
				reason = "Init:" + t.Reason
			case t.Signal != 0:
				reason = fmt.Sprintf("Init:Signal:%d", t.Signal)
			default:
				reason = fmt.Sprintf("Init:ExitCode:%d", t.ExitCode)
			}
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + cs.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		initializing = true
		break
	}

	if !initializing || podConditionTrue(pod, api.PodInitialized) {
		restarts = 0
		lastRestart = time.Time{}
		hasRunning := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := pod.Status.ContainerStatuses[i]
			noteRestart(cs)
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
				reason = cs.State.Waiting.Reason
			case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
				reason = cs.State.Terminated.Reason
			case cs.State.Terminated != nil && cs.State.Terminated.Signal != 0:
				reason = fmt.Sprintf("Signal:%d", cs.State.Terminated.Signal)
			case cs.State.Terminated != nil:
				reason = fmt.Sprintf("ExitCode:%d", cs.State.Terminated.ExitCode)
			case cs.Ready && cs.State.Running != nil:
				hasRunning = true
				readyContainers++
			}
		}
		// A pod whose last container completed while another still runs
		// is running, not completed.
		if reason == "Completed" && hasRunning {
			if podConditionTrue(pod, api.PodReady) {
				reason = "Running"
			} else {
				reason = "NotReady"
			}
		}
	}

	terminal := pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed
	switch {
	case pod.DeletionTimestamp != nil && pod.Status.Reason == "NodeLost":
		reason = "Unknown"
	case pod.DeletionTimestamp != nil && !terminal:
		reason = "Terminating"
	}

	restartsText := strconv.Itoa(restarts)
	if restarts != 0 && !lastRestart.IsZero() {
		restartsText = fmt.Sprintf("%d (%s ago)", restarts, age(lastRestart, now))
	}

	podIP := "<none>"
	if len(pod.Status.PodIPs) > 0 && pod.Status.PodIPs[0].IP != "" {
		podIP = pod.Status.PodIPs[0].IP
	} else if pod.Status.PodIP != "" {
		podIP = pod.Status.PodIP
	}
	nodeName := pod.Spec.NodeName
	if nodeName == "" {
		nodeName = "<none>"
	}
	return []string{
		pod.Name,
		fmt.Sprintf("%d/%d", readyContainers, totalContainers),
		reason,
		restartsText,
		age(pod.CreationTimestamp.Time, now),
		podIP, nodeName, "<none>", "<none>",
	}
}

func podConditionTrue(pod *api.Pod, condition string) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == condition {
			return c.Status == api.ConditionTrue
		}
	}
	return false
}

func serviceRow(svc *api.Service, now time.Time, wide bool) []string {
	clusterIP := "<none>"
	if len(svc.Spec.ClusterIPs) > 0 {
		clusterIP = svc.Spec.ClusterIPs[0]
	} else if svc.Spec.ClusterIP != "" {
		clusterIP = svc.Spec.ClusterIP
	}
	ports := servicePorts(svc.Spec.Ports)
	if ports == "" {
		ports = "<none>"
	}
	svcType := svc.Spec.Type
	if svcType == "" {
		svcType = api.ServiceTypeClusterIP
	}
	return []string{
		svc.Name, svcType, clusterIP, serviceExternalIP(svc, wide), ports,
		age(svc.CreationTimestamp.Time, now),
		formatLabels(svc.Spec.Selector),
	}
}

// servicePorts is the PORT(S) column: "8080/TCP", "8080:31000/TCP".
func servicePorts(ports []api.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, p := range ports {
		protocol := p.Protocol
		if protocol == "" {
			protocol = api.ProtocolTCP
		}
		if p.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, protocol)
		} else {
			pieces[i] = fmt.Sprintf("%d/%s", p.Port, protocol)
		}
	}
	return strings.Join(pieces, ",")
}

// loadBalancerWidth is how much of the ingress list a narrow table shows.
const loadBalancerWidth = 16

// loadBalancerIngress lists the ingress addresses, sorted and unique;
// without -o wide it is cut to 16 characters.
func loadBalancerIngress(status api.LoadBalancerStatus, wide bool) string {
	seen := map[string]bool{}
	var addrs []string
	for _, in := range status.Ingress {
		addr := in.IP
		if addr == "" {
			addr = in.Hostname
		}
		if addr != "" && !seen[addr] {
			seen[addr] = true
			addrs = append(addrs, addr)
		}
	}
	sort.Strings(addrs)
	s := strings.Join(addrs, ",")
	if !wide && len(s) > loadBalancerWidth {
		s = s[:loadBalancerWidth-3] + "..."
	}
	return s
}

// serviceExternalIP is the EXTERNAL-IP column.
func serviceExternalIP(svc *api.Service, wide bool) string {
	switch svc.Spec.Type {
	case "", api.ServiceTypeClusterIP, api.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case api.ServiceTypeLoadBalancer:
		ingress := loadBalancerIngress(svc.Status.LoadBalancer, wide)
		if len(svc.Spec.ExternalIPs) > 0 {
			var all []string
			if ingress != "" {
				all = append(all, strings.Split(ingress, ",")...)
			}
			return strings.Join(append(all, svc.Spec.ExternalIPs...), ",")
		}
		if ingress != "" {
			return ingress
		}
		return "<pending>"
	case api.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

func deploymentRow(d *api.Deployment, now time.Time) []string {
	desired := int32(0)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	names, images := containerCells(d.Spec.Template.Spec.Containers)
	return []string{
		d.Name,
		fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, desired),
		strconv.Itoa(int(d.Status.UpdatedReplicas)),
		strconv.Itoa(int(d.Status.AvailableReplicas)),
		age(d.CreationTimestamp.Time, now),
		names, images, selectorString(d.Spec.Selector),
	}
}

func replicaSetRow(rs *api.ReplicaSet, now time.Time) []string {
	desired := int32(0)
	if rs.Spec.Replicas != nil {
		desired = *rs.Spec.Replicas
	}
	names, images := containerCells(rs.Spec.Template.Spec.Containers)
	return []string{
		rs.Name,
		strconv.Itoa(int(desired)),
		strconv.Itoa(int(rs.Status.Replicas)),
		strconv.Itoa(int(rs.Status.ReadyReplicas)),
		age(rs.CreationTimestamp.Time, now),
		names, images, api.FormatLabelSelector(rs.Spec.Selector),
	}
}

// containerCells are the CONTAINERS and IMAGES cells.
func containerCells(containers []api.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i] = c.Name
		im[i] = c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// formatEndpoints lists "ip:port" for the ports named in portNames (all
// ports when nil), the first three then "+ N more...", "<none>" when the
// object has no subsets.
func formatEndpoints(ep *api.Endpoints, portNames map[string]bool) string {
	if len(ep.Subsets) == 0 {
		return "<none>"
	}
	const max = 3
	var list []string
	more := false
	count := 0
	add := func(addr string) {
		if len(list) == max {
			more = true
			return
		}
		list = append(list, addr)
	}
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			// Headless services may have no ports.
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				add(a.IP)
			}
			continue
		}
		for _, port := range ss.Ports {
			if portNames != nil && !portNames[port.Name] {
				continue
			}
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	s := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", s, count-max)
	}
	return s
}

func nodeRow(node *api.Node, now time.Time) []string {
	status := nodeStatus(node)
	roles := strings.Join(nodeRoles(node), ",")
	if roles == "" {
		roles = "<none>"
	}
	orUnknown := func(s string) string {
		if s == "" {
			return "<unknown>"
		}
		return s
	}
	return []string{
		node.Name, status, roles, age(node.CreationTimestamp.Time, now), node.Status.NodeInfo.KubeletVersion,
		nodeAddress(node, api.NodeInternalIP), nodeAddress(node, api.NodeExternalIP),
		orUnknown(node.Status.NodeInfo.OSImage), orUnknown(node.Status.NodeInfo.KernelVersion),
		orUnknown(node.Status.NodeInfo.ContainerRuntimeVersion),
	}
}

// nodeStatus is Ready, NotReady or Unknown, plus ",SchedulingDisabled".
func nodeStatus(node *api.Node) string {
	status := "Unknown"
	for _, c := range node.Status.Conditions {
		if c.Type == api.NodeReady {
			if c.Status == api.ConditionTrue {
				status = "Ready"
			} else {
				status = "NotReady"
			}
			break
		}
	}
	if node.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	return status
}

// nodeRoles reads node-role.kubernetes.io/<role> and kubernetes.io/role labels.
func nodeRoles(node *api.Node) []string {
	set := map[string]bool{}
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, "node-role.kubernetes.io/"):
			if role := strings.TrimPrefix(k, "node-role.kubernetes.io/"); role != "" {
				set[role] = true
			}
		case k == "kubernetes.io/role" && v != "":
			set[v] = true
		}
	}
	return sortedKeys(set)
}

func nodeAddress(node *api.Node, addressType string) string {
	for _, a := range node.Status.Addresses {
		if a.Type == addressType {
			return a.Address
		}
	}
	return "<none>"
}

func eventRow(e *api.Event, now time.Time) []string {
	firstSeen := age(e.FirstTimestamp.Time, now)
	if e.FirstTimestamp.IsZero() {
		firstSeen = age(e.EventTime.Time, now)
	}
	lastSeen := age(e.LastTimestamp.Time, now)
	if e.LastTimestamp.IsZero() {
		lastSeen = firstSeen
	}
	count := e.Count
	if count == 0 {
		count = 1 // singleton events of the new API carry no count
	}
	object := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		object += "/" + e.InvolvedObject.Name
	}
	source := firstNonEmpty(e.Source.Component, e.ReportingComponent)
	if host := firstNonEmpty(e.Source.Host, e.ReportingInstance); host != "" {
		source += ", " + host
	}
	return []string{
		lastSeen, e.Type, e.Reason, object, e.InvolvedObject.FieldPath, source,
		strings.TrimSpace(e.Message), firstSeen, strconv.Itoa(int(count)), e.Name,
	}
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
