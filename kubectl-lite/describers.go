package kubectl

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"kubelite/api"
)

// This file holds the describers: pure functions from API objects (and the
// objects around them: endpoints, replica sets, pods, events) to the text
// of `kubectl describe` (k8s.io/kubectl/pkg/describe/describe.go). Times
// are printed in now's location, ages relative to now.

// maxAnnotationLen is where describe folds a long annotation.
const maxAnnotationLen = 140

// prefixWriter writes indented, tab-aligned describe lines (kubectl's
// PrefixWriter): each level indents by two spaces.
type prefixWriter struct {
	out *tabwriter.Writer
}

func (w *prefixWriter) write(level int, format string, args ...any) {
	text := strings.Repeat("  ", level) + fmt.Sprintf(format, args...)
	fmt.Fprint(w.out, terminalEscaper.Replace(text))
}

func (w *prefixWriter) writeLine(args ...any) {
	fmt.Fprint(w.out, terminalEscaper.Replace(fmt.Sprintln(args...)))
}

// flush ends a block of aligned columns, so that the next table (events)
// is aligned on its own.
func (w *prefixWriter) flush() { w.out.Flush() }

// tabbedString runs f on a tabwriter with kubectl's describe settings.
func tabbedString(f func(w *prefixWriter)) string {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	f(&prefixWriter{out: tw})
	tw.Flush()
	return buf.String()
}

// describeTime is how describe prints a timestamp (RFC 1123 with zone).
func describeTime(t time.Time, now time.Time) string {
	return t.In(now.Location()).Format(time.RFC1123Z)
}

// ---- Pod ----

func describePod(pod *api.Pod, events *api.List[api.Event], now time.Time) string {
	return tabbedString(func(w *prefixWriter) {
		w.write(0, "Name:\t%s\n", pod.Name)
		w.write(0, "Namespace:\t%s\n", pod.Namespace)
		if pod.Spec.Priority != nil {
			w.write(0, "Priority:\t%d\n", *pod.Spec.Priority)
		}
		if pod.Spec.ServiceAccountName != "" {
			w.write(0, "Service Account:\t%s\n", pod.Spec.ServiceAccountName)
		}
		if pod.Spec.NodeName == "" {
			w.write(0, "Node:\t<none>\n")
		} else {
			w.write(0, "Node:\t%s\n", pod.Spec.NodeName+"/"+pod.Status.HostIP)
		}
		if pod.Status.StartTime != nil {
			w.write(0, "Start Time:\t%s\n", describeTime(pod.Status.StartTime.Time, now))
		}
		printLabelsMultiline(w, "Labels", pod.Labels)
		printAnnotationsMultiline(w, "Annotations", pod.Annotations)
		if pod.DeletionTimestamp != nil && pod.Status.Phase != api.PodFailed && pod.Status.Phase != api.PodSucceeded {
			w.write(0, "Status:\tTerminating (lasts %s)\n", age(pod.DeletionTimestamp.Time, now))
			if pod.DeletionGracePeriodSeconds != nil {
				w.write(0, "Termination Grace Period:\t%ds\n", *pod.DeletionGracePeriodSeconds)
			}
		} else {
			w.write(0, "Status:\t%s\n", pod.Status.Phase)
		}
		if pod.Status.Reason != "" {
			w.write(0, "Reason:\t%s\n", pod.Status.Reason)
		}
		if pod.Status.Message != "" {
			w.write(0, "Message:\t%s\n", pod.Status.Message)
		}
		w.write(0, "IP:\t%s\n", pod.Status.PodIP)
		if len(pod.Status.PodIPs) == 0 {
			w.write(0, "IPs:\t<none>\n")
		} else {
			w.write(0, "IPs:\n")
			for _, ip := range pod.Status.PodIPs {
				w.write(1, "IP:\t%s\n", ip.IP)
			}
		}
		if ref := pod.ControllerRef(); ref != nil {
			w.write(0, "Controlled By:\t%s/%s\n", ref.Kind, ref.Name)
		}
		if len(pod.Spec.InitContainers) > 0 {
			describeContainers(w, "Init Containers", pod.Spec.InitContainers, pod.Status.InitContainerStatuses, "", now)
		}
		describeContainers(w, "Containers", pod.Spec.Containers, pod.Status.ContainerStatuses, "", now)
		if len(pod.Status.Conditions) > 0 {
			w.write(0, "Conditions:\n  Type\tStatus\n")
			for _, c := range pod.Status.Conditions {
				w.write(1, "%v \t%v \n", c.Type, c.Status)
			}
		}
		describeVolumes(w, pod.Spec.Volumes, "")
		w.write(0, "QoS Class:\t%s\n", podQOSClass(pod))
		printLabelsMultiline(w, "Node-Selectors", pod.Spec.NodeSelector)
		printTolerationsMultiline(w, "Tolerations", pod.Spec.Tolerations)
		describeEvents(w, events, now)
	})
}

// podQOSClass is the reported QoS class, or the one the requests and
// limits imply.
func podQOSClass(pod *api.Pod) string {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	anySet, guaranteed := false, true
	for _, c := range pod.Spec.Containers {
		if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
			anySet = true
		}
		for _, name := range []string{"cpu", "memory"} {
			limit, ok := c.Resources.Limits[name]
			if !ok {
				guaranteed = false
				continue
			}
			if req, ok := c.Resources.Requests[name]; ok && req != limit {
				guaranteed = false
			}
		}
	}
	switch {
	case !anySet:
		return "BestEffort"
	case guaranteed:
		return "Guaranteed"
	default:
		return "Burstable"
	}
}

func describeContainers(w *prefixWriter, label string, containers []api.Container, statuses []api.ContainerStatus, space string, now time.Time) {
	byName := map[string]api.ContainerStatus{}
	for _, s := range statuses {
		byName[s.Name] = s
	}
	none := ""
	if len(containers) == 0 {
		none = " <none>"
	}
	w.write(0, "%s%s:%s\n", space, label, none)
	for _, c := range containers {
		status, ok := byName[c.Name]
		nameIndent := ""
		if space != "" {
			nameIndent = " "
		}
		w.write(1, "%s%v:\n", nameIndent, c.Name)
		if ok {
			w.write(2, "Container ID:\t%s\n", status.ContainerID)
		}
		w.write(2, "Image:\t%s\n", c.Image)
		if ok {
			w.write(2, "Image ID:\t%s\n", status.ImageID)
		}
		ports := make([]string, len(c.Ports))
		hostPorts := make([]string, len(c.Ports))
		for i, p := range c.Ports {
			protocol := p.Protocol
			if protocol == "" {
				protocol = api.ProtocolTCP
			}
			ports[i] = fmt.Sprintf("%d/%s", p.ContainerPort, protocol)
			hostPorts[i] = fmt.Sprintf("%d/%s", p.HostPort, protocol)
		}
		writePorts(w, "Port", "Ports", ports)
		writePorts(w, "Host Port", "Host Ports", hostPorts)
		if len(c.Command) > 0 {
			w.write(2, "Command:\n")
			for _, part := range c.Command {
				for _, line := range strings.Split(part, "\n") {
					w.write(3, "%s\n", line)
				}
			}
		}
		if len(c.Args) > 0 {
			w.write(2, "Args:\n")
			for _, part := range c.Args {
				for _, line := range strings.Split(part, "\n") {
					w.write(3, "%s\n", line)
				}
			}
		}
		if ok {
			describeContainerState(w, "State", status.State, now)
			if status.LastState.Terminated != nil {
				describeContainerState(w, "Last State", status.LastState, now)
			}
			w.write(2, "Ready:\t%s\n", printBool(status.Ready))
			w.write(2, "Restart Count:\t%d\n", status.RestartCount)
		}
		describeResources(w, c.Resources)
		if c.LivenessProbe != nil {
			w.write(2, "Liveness:\t%s\n", describeProbe(c.LivenessProbe))
		}
		if c.ReadinessProbe != nil {
			w.write(2, "Readiness:\t%s\n", describeProbe(c.ReadinessProbe))
		}
		if c.StartupProbe != nil {
			w.write(2, "Startup:\t%s\n", describeProbe(c.StartupProbe))
		}
		describeEnv(w, c.Env)
		describeMounts(w, c.VolumeMounts)
	}
}

// writePorts writes "Port: 80/TCP", or "Ports: 80/TCP, 443/TCP" for several.
func writePorts(w *prefixWriter, one, many string, ports []string) {
	joined := strings.Join(ports, ", ")
	switch {
	case len(ports) > 1:
		w.write(2, "%s:\t%s\n", many, joined)
	case joined == "":
		w.write(2, "%s:\t<none>\n", one)
	default:
		w.write(2, "%s:\t%s\n", one, joined)
	}
}

func describeContainerState(w *prefixWriter, name string, state api.ContainerState, now time.Time) {
	switch {
	case state.Running != nil:
		w.write(2, "%s:\tRunning\n", name)
		w.write(3, "Started:\t%v\n", describeTime(state.Running.StartedAt.Time, now))
	case state.Waiting != nil:
		w.write(2, "%s:\tWaiting\n", name)
		if state.Waiting.Reason != "" {
			w.write(3, "Reason:\t%s\n", state.Waiting.Reason)
		}
	case state.Terminated != nil:
		t := state.Terminated
		w.write(2, "%s:\tTerminated\n", name)
		if t.Reason != "" {
			w.write(3, "Reason:\t%s\n", t.Reason)
		}
		if t.Message != "" {
			w.write(3, "Message:\t%s\n", t.Message)
		}
		w.write(3, "Exit Code:\t%d\n", t.ExitCode)
		if t.Signal > 0 {
			w.write(3, "Signal:\t%d\n", t.Signal)
		}
		w.write(3, "Started:\t%s\n", describeTime(t.StartedAt.Time, now))
		w.write(3, "Finished:\t%s\n", describeTime(t.FinishedAt.Time, now))
	default:
		w.write(2, "%s:\tWaiting\n", name)
	}
}

func printBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func describeResources(w *prefixWriter, r api.ResourceRequirements) {
	if len(r.Limits) > 0 {
		w.write(2, "Limits:\n")
	}
	for _, name := range sortedResourceNames(r.Limits) {
		w.write(3, "%s:\t%s\n", name, r.Limits[name])
	}
	if len(r.Requests) > 0 {
		w.write(2, "Requests:\n")
	}
	for _, name := range sortedResourceNames(r.Requests) {
		w.write(3, "%s:\t%s\n", name, r.Requests[name])
	}
}

// sortedResourceNames orders resources as kubectl does: cpu, memory, then by name.
func sortedResourceNames(list api.ResourceList) []string {
	rank := func(name string) int {
		switch name {
		case "cpu":
			return 0
		case "memory":
			return 1
		}
		return 2
	}
	names := sortedKeys(list)
	sort.SliceStable(names, func(i, j int) bool { return rank(names[i]) < rank(names[j]) })
	return names
}

func describeProbe(p *api.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	switch {
	case p.Exec != nil:
		return fmt.Sprintf("exec %v %s", p.Exec.Command, attrs)
	case p.HTTPGet != nil:
		u := &url.URL{Scheme: strings.ToLower(p.HTTPGet.Scheme), Path: p.HTTPGet.Path}
		if port := p.HTTPGet.Port.String(); port != "" {
			u.Host = net.JoinHostPort(p.HTTPGet.Host, port)
		} else {
			u.Host = p.HTTPGet.Host
		}
		return fmt.Sprintf("http-get %s %s", u.String(), attrs)
	case p.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", p.TCPSocket.Host, p.TCPSocket.Port.String(), attrs)
	}
	return "unknown " + attrs
}

func describeEnv(w *prefixWriter, env []api.EnvVar) {
	if len(env) == 0 {
		w.write(2, "Environment:\t<none>\n")
		return
	}
	w.write(2, "Environment:\n")
	for _, e := range env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			w.write(3, "%s:\t (%s:%s)\n", e.Name, e.ValueFrom.FieldRef.APIVersion, e.ValueFrom.FieldRef.FieldPath)
			continue
		}
		for i, line := range strings.Split(e.Value, "\n") {
			if i == 0 {
				w.write(3, "%s:\t%s\n", e.Name, line)
			} else {
				w.write(3, "\t%s\n", line)
			}
		}
	}
}

func describeMounts(w *prefixWriter, mounts []api.VolumeMount) {
	if len(mounts) == 0 {
		w.write(2, "Mounts:\t<none>\n")
		return
	}
	w.write(2, "Mounts:\n")
	sorted := append([]api.VolumeMount(nil), mounts...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].MountPath < sorted[j].MountPath })
	for _, m := range sorted {
		flags := []string{"rw"}
		if m.ReadOnly {
			flags[0] = "ro"
		}
		if m.SubPath != "" {
			flags = append(flags, fmt.Sprintf("path=%q", m.SubPath))
		}
		w.write(3, "%s from %s (%s)\n", m.MountPath, m.Name, strings.Join(flags, ","))
	}
}

func describeVolumes(w *prefixWriter, volumes []api.Volume, space string) {
	if len(volumes) == 0 {
		w.write(0, "%sVolumes:\t<none>\n", space)
		return
	}
	w.write(0, "%sVolumes:\n", space)
	for _, v := range volumes {
		nameIndent := ""
		if space != "" {
			nameIndent = " "
		}
		w.write(1, "%s%v:\n", nameIndent, v.Name)
		switch {
		case v.HostPath != nil:
			w.write(2, "Type:\tHostPath (bare host directory volume)\n"+
				"    Path:\t%v\n"+
				"    HostPathType:\t%v\n", v.HostPath.Path, v.HostPath.Type)
		case v.EmptyDir != nil:
			sizeLimit := v.EmptyDir.SizeLimit
			if sizeLimit == "" {
				sizeLimit = "<unset>"
			}
			w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n"+
				"    Medium:\t%s\n"+
				"    SizeLimit:\t%s\n", v.EmptyDir.Medium, sizeLimit)
		default:
			w.write(1, "<unknown>\n")
		}
	}
}

// printLabelsMultiline writes "Title: k=v" with one label per line.
func printLabelsMultiline(w *prefixWriter, title string, labels map[string]string) {
	w.write(0, "%s:\t", title)
	if len(labels) == 0 {
		w.writeLine("<none>")
		return
	}
	for i, k := range sortedKeys(labels) {
		if i != 0 {
			w.write(0, "\t")
		}
		w.write(0, "%s=%s\n", k, labels[k])
	}
}

// printAnnotationsMultiline writes annotations, folding long or multi-line
// values and hiding the last-applied configuration, as kubectl does.
func printAnnotationsMultiline(w *prefixWriter, title string, annotations map[string]string) {
	w.write(0, "%s:\t", title)
	var keys []string
	for _, k := range sortedKeys(annotations) {
		if k != lastAppliedAnnotation {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		w.writeLine("<none>")
		return
	}
	for i, k := range keys {
		if i != 0 {
			w.write(0, "\t")
		}
		value := strings.TrimSuffix(annotations[k], "\n")
		if len(value)+len(k)+2 > maxAnnotationLen || strings.Contains(value, "\n") {
			w.write(0, "%s:\n", k)
			for _, line := range strings.Split(value, "\n") {
				if len(line) > maxAnnotationLen-2 {
					line = line[:maxAnnotationLen-2] + "..."
				}
				w.write(0, "\t  %s\n", line)
			}
			continue
		}
		w.write(0, "%s: %s\n", k, value)
	}
}

func printTolerationsMultiline(w *prefixWriter, title string, tolerations []api.Toleration) {
	w.write(0, "%s:\t", title)
	if len(tolerations) == 0 {
		w.writeLine("<none>")
		return
	}
	sorted := append([]api.Toleration(nil), tolerations...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	for i, t := range sorted {
		if i != 0 {
			w.write(0, "\t")
		}
		w.write(0, "%s", t.Key)
		if t.Value != "" {
			w.write(0, "=%s", t.Value)
		}
		if t.Effect != "" {
			w.write(0, ":%s", t.Effect)
		}
		// An Exists toleration without value tolerates everything.
		if t.Operator == "Exists" && t.Value == "" {
			if t.Key != "" || t.Effect != "" {
				w.write(0, " op=Exists")
			} else {
				w.write(0, "op=Exists")
			}
		}
		if t.TolerationSeconds != nil {
			w.write(0, " for %ds", *t.TolerationSeconds)
		}
		w.write(0, "\n")
	}
}

func printTaintsMultiline(w *prefixWriter, title string, taints []api.Taint) {
	w.write(0, "%s:\t", title)
	if len(taints) == 0 {
		w.writeLine("<none>")
		return
	}
	for i, t := range taints {
		if i != 0 {
			w.write(0, "\t")
		}
		text := t.Key
		if t.Value != "" {
			text += "=" + t.Value
		}
		w.write(0, "%s:%s\n", text, t.Effect)
	}
}

// describeEvents writes the Events table, oldest first; nil means events
// were not asked for.
func describeEvents(w *prefixWriter, events *api.List[api.Event], now time.Time) {
	if events == nil {
		return
	}
	if len(events.Items) == 0 {
		w.write(0, "Events:\t<none>\n")
		return
	}
	w.flush()
	sorted := append([]api.Event(nil), events.Items...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].LastTimestamp.Before(sorted[j].LastTimestamp.Time) })
	w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
	w.write(1, "----\t------\t----\t----\t-------\n")
	for _, e := range sorted {
		first := age(e.EventTime.Time, now)
		if e.EventTime.IsZero() {
			first = age(e.FirstTimestamp.Time, now)
		}
		interval := first
		if e.Count > 1 {
			interval = fmt.Sprintf("%s (x%d over %s)", age(e.LastTimestamp.Time, now), e.Count, first)
		}
		source := firstNonEmpty(e.Source.Component, e.ReportingComponent)
		w.write(1, "%v\t%v\t%s\t%v\t%v\n", e.Type, e.Reason, interval, source, strings.TrimSpace(e.Message))
	}
}

// ---- Service ----

func describeService(svc *api.Service, endpoints *api.Endpoints, events *api.List[api.Event], now time.Time) string {
	if endpoints == nil {
		endpoints = &api.Endpoints{}
	}
	return tabbedString(func(w *prefixWriter) {
		w.write(0, "Name:\t%s\n", svc.Name)
		w.write(0, "Namespace:\t%s\n", svc.Namespace)
		printLabelsMultiline(w, "Labels", svc.Labels)
		printAnnotationsMultiline(w, "Annotations", svc.Annotations)
		w.write(0, "Selector:\t%s\n", formatLabels(svc.Spec.Selector))
		w.write(0, "Type:\t%s\n", svc.Spec.Type)
		if svc.Spec.IPFamilyPolicy != nil {
			w.write(0, "IP Family Policy:\t%s\n", *svc.Spec.IPFamilyPolicy)
		}
		if len(svc.Spec.IPFamilies) > 0 {
			w.write(0, "IP Families:\t%s\n", strings.Join(svc.Spec.IPFamilies, ","))
		} else {
			w.write(0, "IP Families:\t<none>\n")
		}
		w.write(0, "IP:\t%s\n", svc.Spec.ClusterIP)
		if len(svc.Spec.ClusterIPs) > 0 {
			w.write(0, "IPs:\t%s\n", strings.Join(svc.Spec.ClusterIPs, ","))
		} else {
			w.write(0, "IPs:\t<none>\n")
		}
		if len(svc.Spec.ExternalIPs) > 0 {
			w.write(0, "External IPs:\t%v\n", strings.Join(svc.Spec.ExternalIPs, ","))
		}
		if svc.Spec.LoadBalancerIP != "" {
			w.write(0, "Desired LoadBalancer IP:\t%s\n", svc.Spec.LoadBalancerIP)
		}
		if svc.Spec.ExternalName != "" {
			w.write(0, "External Name:\t%s\n", svc.Spec.ExternalName)
		}
		if ingress := svc.Status.LoadBalancer.Ingress; len(ingress) > 0 {
			addrs := make([]string, len(ingress))
			for i, in := range ingress {
				addrs[i] = firstNonEmpty(in.IP, in.Hostname)
			}
			w.write(0, "LoadBalancer Ingress:\t%s\n", strings.Join(addrs, ", "))
		}
		for _, p := range svc.Spec.Ports {
			name := p.Name
			if name == "" {
				name = "<unset>"
			}
			protocol := p.Protocol
			if protocol == "" {
				protocol = api.ProtocolTCP
			}
			w.write(0, "Port:\t%s\t%d/%s\n", name, p.Port, protocol)
			w.write(0, "TargetPort:\t%s/%s\n", p.TargetPort.String(), protocol)
			if p.NodePort != 0 {
				w.write(0, "NodePort:\t%s\t%d/%s\n", name, p.NodePort, protocol)
			}
			w.write(0, "Endpoints:\t%s\n", formatEndpoints(endpoints, map[string]bool{p.Name: true}))
		}
		w.write(0, "Session Affinity:\t%s\n", svc.Spec.SessionAffinity)
		if svc.Spec.ExternalTrafficPolicy != "" {
			w.write(0, "External Traffic Policy:\t%s\n", svc.Spec.ExternalTrafficPolicy)
		}
		if svc.Spec.InternalTrafficPolicy != nil {
			w.write(0, "Internal Traffic Policy:\t%s\n", *svc.Spec.InternalTrafficPolicy)
		}
		if svc.Spec.HealthCheckNodePort != 0 {
			w.write(0, "HealthCheck NodePort:\t%d\n", svc.Spec.HealthCheckNodePort)
		}
		if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
			w.write(0, "LoadBalancer Source Ranges:\t%v\n", strings.Join(svc.Spec.LoadBalancerSourceRanges, ","))
		}
		describeEvents(w, events, now)
	})
}

// ---- Endpoints ----

func describeEndpoints(ep *api.Endpoints, events *api.List[api.Event], now time.Time) string {
	return tabbedString(func(w *prefixWriter) {
		w.write(0, "Name:\t%s\n", ep.Name)
		w.write(0, "Namespace:\t%s\n", ep.Namespace)
		printLabelsMultiline(w, "Labels", ep.Labels)
		printAnnotationsMultiline(w, "Annotations", ep.Annotations)
		w.write(0, "Subsets:\n")
		ipList := func(addrs []api.EndpointAddress) string {
			ips := make([]string, len(addrs))
			for i, a := range addrs {
				ips[i] = a.IP
			}
			if len(ips) == 0 {
				return "<none>"
			}
			return strings.Join(ips, ",")
		}
		for _, ss := range ep.Subsets {
			w.write(1, "Addresses:\t%s\n", ipList(ss.Addresses))
			w.write(1, "NotReadyAddresses:\t%s\n", ipList(ss.NotReadyAddresses))
			if len(ss.Ports) > 0 {
				w.write(1, "Ports:\n")
				w.write(2, "Name\tPort\tProtocol\n")
				w.write(2, "----\t----\t--------\n")
				for _, p := range ss.Ports {
					name := p.Name
					if name == "" {
						name = "<unset>"
					}
					w.write(2, "%s\t%d\t%s\n", name, p.Port, p.Protocol)
				}
			}
			w.write(0, "\n")
		}
		describeEvents(w, events, now)
	})
}

// ---- Deployment ----

func describeDeployment(d *api.Deployment, oldRSs []*api.ReplicaSet, newRS *api.ReplicaSet, events *api.List[api.Event], now time.Time) string {
	return tabbedString(func(w *prefixWriter) {
		w.write(0, "Name:\t%s\n", d.Name)
		w.write(0, "Namespace:\t%s\n", d.Namespace)
		w.write(0, "CreationTimestamp:\t%s\n", describeTime(d.CreationTimestamp.Time, now))
		printLabelsMultiline(w, "Labels", d.Labels)
		printAnnotationsMultiline(w, "Annotations", d.Annotations)
		w.write(0, "Selector:\t%s\n", selectorString(d.Spec.Selector))
		w.write(0, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable\n",
			int32OrZero(d.Spec.Replicas), d.Status.UpdatedReplicas, d.Status.Replicas, d.Status.AvailableReplicas, d.Status.UnavailableReplicas)
		w.write(0, "StrategyType:\t%s\n", d.Spec.Strategy.Type)
		w.write(0, "MinReadySeconds:\t%d\n", d.Spec.MinReadySeconds)
		if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
			w.write(0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", intOrStringText(ru.MaxUnavailable), intOrStringText(ru.MaxSurge))
		}
		describePodTemplate(w, &d.Spec.Template)
		if len(d.Status.Conditions) > 0 {
			w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
			w.write(1, "----\t------\t------\n")
			for _, c := range d.Status.Conditions {
				w.write(1, "%v \t%v\t%v\n", c.Type, c.Status, c.Reason)
			}
		}
		if oldRSs != nil || newRS != nil {
			w.write(0, "OldReplicaSets:\t%s\n", replicaSetsSummary(oldRSs))
			var newRSs []*api.ReplicaSet
			if newRS != nil {
				newRSs = append(newRSs, newRS)
			}
			w.write(0, "NewReplicaSet:\t%s\n", replicaSetsSummary(newRSs))
		}
		describeEvents(w, events, now)
	})
}

func int32OrZero(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func intOrStringText(v *api.IntOrString) string {
	if v == nil {
		return "<unset>"
	}
	return v.String()
}

// replicaSetsSummary is "name (2/3 replicas created), ..." or "<none>".
func replicaSetsSummary(rss []*api.ReplicaSet) string {
	parts := make([]string, len(rss))
	for i, rs := range rss {
		parts[i] = fmt.Sprintf("%s (%d/%d replicas created)", rs.Name, rs.Status.Replicas, int32OrZero(rs.Spec.Replicas))
	}
	if len(parts) == 0 {
		return "<none>"
	}
	return strings.Join(parts, ", ")
}

func describePodTemplate(w *prefixWriter, t *api.PodTemplateSpec) {
	w.write(0, "Pod Template:\n")
	printLabelsMultiline(w, "  Labels", t.Labels)
	if len(t.Annotations) > 0 {
		printAnnotationsMultiline(w, "  Annotations", t.Annotations)
	}
	if t.Spec.ServiceAccountName != "" {
		w.write(1, "Service Account:\t%s\n", t.Spec.ServiceAccountName)
	}
	if len(t.Spec.InitContainers) > 0 {
		describeContainers(w, "Init Containers", t.Spec.InitContainers, nil, "  ", time.Time{})
	}
	describeContainers(w, "Containers", t.Spec.Containers, nil, "  ", time.Time{})
	describeVolumes(w, t.Spec.Volumes, "  ")
	printLabelsMultiline(w, "  Node-Selectors", t.Spec.NodeSelector)
	printTolerationsMultiline(w, "  Tolerations", t.Spec.Tolerations)
}

// ---- ReplicaSet ----

// podPhaseCounts counts the pods of a controller by phase.
type podPhaseCounts struct {
	running, waiting, succeeded, failed int
}

func countPodPhases(pods []api.Pod) podPhaseCounts {
	var c podPhaseCounts
	for _, p := range pods {
		switch p.Status.Phase {
		case api.PodRunning:
			c.running++
		case api.PodPending:
			c.waiting++
		case api.PodSucceeded:
			c.succeeded++
		case api.PodFailed:
			c.failed++
		}
	}
	return c
}

func describeReplicaSet(rs *api.ReplicaSet, pods podPhaseCounts, events *api.List[api.Event], now time.Time) string {
	return tabbedString(func(w *prefixWriter) {
		w.write(0, "Name:\t%s\n", rs.Name)
		w.write(0, "Namespace:\t%s\n", rs.Namespace)
		w.write(0, "Selector:\t%s\n", api.FormatLabelSelector(rs.Spec.Selector))
		printLabelsMultiline(w, "Labels", rs.Labels)
		printAnnotationsMultiline(w, "Annotations", rs.Annotations)
		if ref := rs.ControllerRef(); ref != nil {
			w.write(0, "Controlled By:\t%s/%s\n", ref.Kind, ref.Name)
		}
		w.write(0, "Replicas:\t%d current / %d desired\n", rs.Status.Replicas, int32OrZero(rs.Spec.Replicas))
		w.write(0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n", pods.running, pods.waiting, pods.succeeded, pods.failed)
		describePodTemplate(w, &rs.Spec.Template)
		describeEvents(w, events, now)
	})
}

// ---- Node ----

func describeNode(node *api.Node, pods []api.Pod, lease *api.Lease, events *api.List[api.Event], now time.Time) string {
	return tabbedString(func(w *prefixWriter) {
		w.write(0, "Name:\t%s\n", node.Name)
		if roles := nodeRoles(node); len(roles) > 0 {
			w.write(0, "Roles:\t%s\n", strings.Join(roles, ","))
		} else {
			w.write(0, "Roles:\t<none>\n")
		}
		printLabelsMultiline(w, "Labels", node.Labels)
		printAnnotationsMultiline(w, "Annotations", node.Annotations)
		w.write(0, "CreationTimestamp:\t%s\n", describeTime(node.CreationTimestamp.Time, now))
		printTaintsMultiline(w, "Taints", node.Spec.Taints)
		w.write(0, "Unschedulable:\t%v\n", node.Spec.Unschedulable)
		if lease != nil {
			w.write(0, "Lease:\n")
			holder := "<unset>"
			if lease.Spec.HolderIdentity != nil {
				holder = *lease.Spec.HolderIdentity
			}
			w.write(1, "HolderIdentity:\t%s\n", holder)
			microTime := func(t *api.MicroTime) string {
				if t == nil {
					return "<unset>"
				}
				return describeTime(t.Time, now)
			}
			w.write(1, "AcquireTime:\t%s\n", microTime(lease.Spec.AcquireTime))
			w.write(1, "RenewTime:\t%s\n", microTime(lease.Spec.RenewTime))
		}
		if len(node.Status.Conditions) > 0 {
			w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
			w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
			for _, c := range node.Status.Conditions {
				w.write(1, "%v \t%v \t%s \t%s \t%v \t%v\n", c.Type, c.Status,
					describeTime(c.LastHeartbeatTime.Time, now), describeTime(c.LastTransitionTime.Time, now), c.Reason, c.Message)
			}
		}
		w.write(0, "Addresses:\n")
		for _, a := range node.Status.Addresses {
			w.write(1, "%s:\t%s\n", a.Type, a.Address)
		}
		printResources := func(title string, list api.ResourceList) {
			if len(list) == 0 {
				return
			}
			w.write(0, "%s:\n", title)
			for _, name := range sortedResourceNames(list) {
				w.write(0, "  %s:\t%s\n", name, list[name])
			}
		}
		printResources("Capacity", node.Status.Capacity)
		printResources("Allocatable", node.Status.Allocatable)
		info := node.Status.NodeInfo
		w.write(0, "System Info:\n")
		w.write(0, "  Machine ID:\t%s\n", info.MachineID)
		w.write(0, "  Kernel Version:\t%s\n", info.KernelVersion)
		w.write(0, "  OS Image:\t%s\n", info.OSImage)
		w.write(0, "  Operating System:\t%s\n", info.OperatingSystem)
		w.write(0, "  Architecture:\t%s\n", info.Architecture)
		w.write(0, "  Container Runtime Version:\t%s\n", info.ContainerRuntimeVersion)
		w.write(0, "  Kubelet Version:\t%s\n", info.KubeletVersion)
		w.write(0, "  Kube-Proxy Version:\t%s\n", info.KubeProxyVersion)
		if node.Spec.PodCIDR != "" {
			w.write(0, "PodCIDR:\t%s\n", node.Spec.PodCIDR)
		}
		if len(node.Spec.PodCIDRs) > 0 {
			w.write(0, "PodCIDRs:\t%s\n", strings.Join(node.Spec.PodCIDRs, ","))
		}
		describeNodeResources(w, node, pods, now)
		describeEvents(w, events, now)
	})
}

// describeNodeResources writes the pods of a node with their requests and
// limits, and the node's totals as shares of what it can allocate.
func describeNodeResources(w *prefixWriter, node *api.Node, pods []api.Pod, now time.Time) {
	allocatable := node.Status.Capacity
	if len(node.Status.Allocatable) > 0 {
		allocatable = node.Status.Allocatable
	}
	share := func(name string, q quantity) int64 {
		total := parseQuantity(allocatable[name])
		if total.value == 0 {
			return 0
		}
		return int64(float64(q.value) / float64(total.value) * 100)
	}
	w.write(0, "Non-terminated Pods:\t(%d in total)\n", len(pods))
	w.write(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
	w.write(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
	totalReq, totalLim := map[string]quantity{}, map[string]quantity{}
	for _, pod := range pods {
		req, lim := podRequestsAndLimits(&pod)
		for name, q := range req {
			totalReq[name] = totalReq[name].add(q)
		}
		for name, q := range lim {
			totalLim[name] = totalLim[name].add(q)
		}
		w.write(1, "%s\t%s\t\t%s (%d%%)\t%s (%d%%)\t%s (%d%%)\t%s (%d%%)\t%s\n", pod.Namespace, pod.Name,
			req["cpu"], share("cpu", req["cpu"]), lim["cpu"], share("cpu", lim["cpu"]),
			req["memory"], share("memory", req["memory"]), lim["memory"], share("memory", lim["memory"]),
			age(pod.CreationTimestamp.Time, now))
	}
	w.write(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n")
	w.write(1, "Resource\tRequests\tLimits\n")
	w.write(1, "--------\t--------\t------\n")
	for _, name := range []string{"cpu", "memory", "ephemeral-storage"} {
		w.write(1, "%s\t%s (%d%%)\t%s (%d%%)\n", name, totalReq[name], share(name, totalReq[name]), totalLim[name], share(name, totalLim[name]))
	}
}

// podRequestsAndLimits sums the requests and limits of a pod's containers.
func podRequestsAndLimits(pod *api.Pod) (requests, limits map[string]quantity) {
	requests, limits = map[string]quantity{}, map[string]quantity{}
	for _, c := range pod.Spec.Containers {
		for name, v := range c.Resources.Requests {
			requests[name] = requests[name].add(parseQuantity(v))
		}
		for name, v := range c.Resources.Limits {
			limits[name] = limits[name].add(parseQuantity(v))
		}
	}
	return requests, limits
}

// ---- Namespace ----

func describeNamespace(ns *api.Namespace) string {
	return tabbedString(func(w *prefixWriter) {
		w.write(0, "Name:\t%s\n", ns.Name)
		printLabelsMultiline(w, "Labels", ns.Labels)
		printAnnotationsMultiline(w, "Annotations", ns.Annotations)
		w.write(0, "Status:\t%s\n", ns.Status.Phase)
		// kubelite has no ResourceQuota or LimitRange objects.
		w.write(0, "\n")
		w.write(0, "No resource quota.\n")
		w.write(0, "\n")
		w.write(0, "No LimitRange resource.\n")
	})
}

// ---- anything else ----

// describeObject is the fallback describer: the metadata and the events.
func describeObject(obj api.Object, events *api.List[api.Event], now time.Time) string {
	meta := obj.GetObjectMeta()
	return tabbedString(func(w *prefixWriter) {
		w.write(0, "Name:\t%s\n", meta.Name)
		if meta.Namespace != "" {
			w.write(0, "Namespace:\t%s\n", meta.Namespace)
		}
		printLabelsMultiline(w, "Labels", meta.Labels)
		printAnnotationsMultiline(w, "Annotations", meta.Annotations)
		w.write(0, "CreationTimestamp:\t%s\n", describeTime(meta.CreationTimestamp.Time, now))
		describeEvents(w, events, now)
	})
}
