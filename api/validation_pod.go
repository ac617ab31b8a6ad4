package api

import (
	"fmt"
	"slices"
	"strings"
)

// Validation of Pods and of the Pod templates of controllers.

// DNS policies of a Pod.
const (
	DNSClusterFirst            = "ClusterFirst"
	DNSClusterFirstWithHostNet = "ClusterFirstWithHostNet"
	DNSDefault                 = "Default"
	DNSNone                    = "None"
)

// Termination message policies of a container.
const (
	TerminationMessageReadFile              = "File"
	TerminationMessageFallbackToLogsOnError = "FallbackToLogsOnError"
)

func validatePod(pod *Pod) FieldErrors {
	errs := validateObjectMeta(&pod.ObjectMeta, "Pod", IsDNS1123Subdomain)
	return append(errs, validatePodSpec(&pod.Spec, "spec")...)
}

func validatePodSpec(spec *PodSpec, p fieldPath) FieldErrors {
	volumes, errs := validateVolumes(spec.Volumes, p.Child("volumes"))
	if len(spec.Containers) == 0 {
		errs = append(errs, required(p.Child("containers"), ""))
	}
	containerNames := map[string]bool{}
	errs = append(errs, validateContainers(spec.Containers, p.Child("containers"), volumes, containerNames)...)
	errs = append(errs, validateContainers(spec.InitContainers, p.Child("initContainers"), volumes, containerNames)...)
	errs = append(errs, validateHostPorts(spec, p)...)

	switch spec.RestartPolicy {
	case RestartAlways, RestartOnFailure, RestartNever:
	case "":
		errs = append(errs, required(p.Child("restartPolicy"), ""))
	default:
		errs = append(errs, notSupported(p.Child("restartPolicy"), spec.RestartPolicy, RestartAlways, RestartOnFailure, RestartNever))
	}
	errs = append(errs, validateDNS(spec, p)...)

	if t := spec.TerminationGracePeriodSeconds; t != nil && *t < 0 {
		errs = append(errs, invalid(p.Child("terminationGracePeriodSeconds"), *t, isNegativeMsg))
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && *d < 1 {
		errs = append(errs, invalid(p.Child("activeDeadlineSeconds"), *d, inclusiveRangeError(1, 2147483647)))
	}
	if spec.NodeName != "" {
		for _, msg := range IsDNS1123Subdomain(spec.NodeName) {
			errs = append(errs, invalid(p.Child("nodeName"), spec.NodeName, msg))
		}
	}
	for _, f := range []namedString{{"hostname", spec.Hostname}, {"subdomain", spec.Subdomain}} {
		if f.value == "" {
			continue
		}
		for _, msg := range IsDNS1123Label(f.value) {
			errs = append(errs, invalid(p.Child(f.name), f.value, msg))
		}
	}
	for _, f := range []namedString{{"serviceAccountName", spec.ServiceAccountName}, {"schedulerName", spec.SchedulerName}} {
		if f.value == "" {
			continue
		}
		for _, msg := range IsDNS1123Subdomain(f.value) {
			errs = append(errs, invalid(p.Child(f.name), f.value, msg))
		}
	}
	errs = append(errs, validateLabels(spec.NodeSelector, p.Child("nodeSelector"))...)
	errs = append(errs, validateTolerations(spec.Tolerations, p.Child("tolerations"))...)
	return errs
}

// validateVolumes checks the Pod's volumes and returns the set of their names,
// which volume mounts must refer to.
func validateVolumes(volumes []Volume, p fieldPath) (map[string]bool, FieldErrors) {
	names := map[string]bool{}
	var errs FieldErrors
	for i, v := range volumes {
		vp := p.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, required(vp.Child("name"), ""))
		case names[v.Name]:
			errs = append(errs, duplicate(vp.Child("name"), v.Name))
		default:
			for _, msg := range IsDNS1123Label(v.Name) {
				errs = append(errs, invalid(vp.Child("name"), v.Name, msg))
			}
		}
		names[v.Name] = true

		sources := 0
		if v.EmptyDir != nil {
			sources++
			if m := v.EmptyDir.Medium; m != "" && m != "Memory" {
				errs = append(errs, notSupported(vp.Child("emptyDir", "medium"), m, "", "Memory"))
			}
		}
		if v.HostPath != nil {
			if sources > 0 {
				errs = append(errs, forbidden(vp.Child("hostPath"), "may not specify more than 1 volume type"))
			} else {
				sources++
				errs = append(errs, validateHostPath(v.HostPath, vp.Child("hostPath"))...)
			}
		}
		if sources == 0 {
			errs = append(errs, required(vp, "must specify a volume type"))
		}
	}
	return names, errs
}

var hostPathTypes = []string{"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"}

func validateHostPath(hp *HostPathVolumeSource, p fieldPath) FieldErrors {
	var errs FieldErrors
	if hp.Path == "" {
		errs = append(errs, required(p.Child("path"), ""))
	} else if containsDotDot(hp.Path) {
		errs = append(errs, invalid(p.Child("path"), hp.Path, "must not contain '..'"))
	}
	if !slices.Contains(hostPathTypes, hp.Type) {
		errs = append(errs, notSupported(p.Child("type"), hp.Type, hostPathTypes...))
	}
	return errs
}

// validateContainers checks a list of containers; names must be unique across
// all containers of the Pod, so the set of names seen so far is shared.
func validateContainers(containers []Container, p fieldPath, volumes, names map[string]bool) FieldErrors {
	var errs FieldErrors
	for i := range containers {
		c := &containers[i]
		cp := p.Index(i)
		switch {
		case c.Name == "":
			errs = append(errs, required(cp.Child("name"), ""))
		case names[c.Name]:
			errs = append(errs, duplicate(cp.Child("name"), c.Name))
		default:
			for _, msg := range IsDNS1123Label(c.Name) {
				errs = append(errs, invalid(cp.Child("name"), c.Name, msg))
			}
		}
		names[c.Name] = true

		if c.Image == "" {
			errs = append(errs, required(cp.Child("image"), ""))
		} else if c.Image != strings.TrimSpace(c.Image) {
			errs = append(errs, invalid(cp.Child("image"), c.Image, "must not have leading or trailing whitespace"))
		}
		switch c.ImagePullPolicy {
		case PullAlways, PullIfNotPresent, PullNever:
		case "":
			errs = append(errs, required(cp.Child("imagePullPolicy"), ""))
		default:
			errs = append(errs, notSupported(cp.Child("imagePullPolicy"), c.ImagePullPolicy, PullAlways, PullIfNotPresent, PullNever))
		}
		switch c.TerminationMessagePolicy {
		case TerminationMessageReadFile, TerminationMessageFallbackToLogsOnError:
		case "":
			errs = append(errs, required(cp.Child("terminationMessagePolicy"), ""))
		default:
			errs = append(errs, notSupported(cp.Child("terminationMessagePolicy"), c.TerminationMessagePolicy,
				TerminationMessageFallbackToLogsOnError, TerminationMessageReadFile))
		}
		errs = append(errs, validateContainerPorts(c.Ports, cp.Child("ports"))...)
		errs = append(errs, validateEnv(c.Env, cp.Child("env"))...)
		errs = append(errs, validateVolumeMounts(c.VolumeMounts, cp.Child("volumeMounts"), volumes)...)
		errs = append(errs, validateProbe(c.LivenessProbe, cp.Child("livenessProbe"), true)...)
		errs = append(errs, validateProbe(c.ReadinessProbe, cp.Child("readinessProbe"), false)...)
		errs = append(errs, validateProbe(c.StartupProbe, cp.Child("startupProbe"), true)...)
	}
	return errs
}

var supportedProtocols = []string{ProtocolSCTP, ProtocolTCP, ProtocolUDP}

// validateProtocol checks a port's protocol, which defaulting always sets.
func validateProtocol(protocol string, p fieldPath) FieldErrors {
	switch protocol {
	case ProtocolTCP, ProtocolUDP, ProtocolSCTP:
		return nil
	case "":
		return FieldErrors{required(p, "")}
	}
	return FieldErrors{notSupported(p, protocol, supportedProtocols...)}
}

func validateContainerPorts(ports []ContainerPort, p fieldPath) FieldErrors {
	var errs FieldErrors
	names := map[string]bool{}
	for i, port := range ports {
		pp := p.Index(i)
		if port.Name != "" {
			for _, msg := range IsValidPortName(port.Name) {
				errs = append(errs, invalid(pp.Child("name"), port.Name, msg))
			}
			if names[port.Name] {
				errs = append(errs, duplicate(pp.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		if port.ContainerPort == 0 {
			errs = append(errs, required(pp.Child("containerPort"), ""))
		} else {
			for _, msg := range isValidPortNum(int(port.ContainerPort)) {
				errs = append(errs, invalid(pp.Child("containerPort"), port.ContainerPort, msg))
			}
		}
		if port.HostPort != 0 {
			for _, msg := range isValidPortNum(int(port.HostPort)) {
				errs = append(errs, invalid(pp.Child("hostPort"), port.HostPort, msg))
			}
		}
		errs = append(errs, validateProtocol(port.Protocol, pp.Child("protocol"))...)
		if port.HostIP != "" {
			for _, msg := range isValidIP(port.HostIP) {
				errs = append(errs, invalid(pp.Child("hostIP"), port.HostIP, msg))
			}
		}
	}
	return errs
}

// validateHostPorts reports a host port (and protocol) claimed twice in a Pod.
func validateHostPorts(spec *PodSpec, p fieldPath) FieldErrors {
	var errs FieldErrors
	claimed := map[string]bool{}
	for i, c := range spec.Containers {
		for j, port := range c.Ports {
			if port.HostPort == 0 {
				continue
			}
			key := fmt.Sprintf("%d/%s", port.HostPort, port.Protocol)
			if claimed[key] {
				errs = append(errs, duplicate(p.Child("containers").Index(i).Child("ports").Index(j).Child("hostPort"), key))
			}
			claimed[key] = true
		}
	}
	return errs
}

// downwardAPIFieldPaths are the Pod fields an environment variable may take its value from.
var downwardAPIFieldPaths = []string{
	"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
	"spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.podIP", "status.podIPs",
}

func validateEnv(env []EnvVar, p fieldPath) FieldErrors {
	var errs FieldErrors
	for i, ev := range env {
		ep := p.Index(i)
		if ev.Name == "" {
			errs = append(errs, required(ep.Child("name"), ""))
		} else {
			for _, msg := range isEnvVarName(ev.Name) {
				errs = append(errs, invalid(ep.Child("name"), ev.Name, msg))
			}
		}
		if ev.ValueFrom == nil {
			continue
		}
		vp := ep.Child("valueFrom")
		if ev.Value != "" {
			errs = append(errs, invalid(vp, "", "may not be specified when `value` is not empty"))
		}
		ref := ev.ValueFrom.FieldRef
		if ref == nil {
			errs = append(errs, invalid(vp, "", "must specify one of: `fieldRef`"))
			continue
		}
		fp := vp.Child("fieldRef", "fieldPath")
		// metadata.labels['key'] and metadata.annotations['key'] select one entry.
		base, _, subscripted := strings.Cut(ref.FieldPath, "['")
		switch {
		case ref.FieldPath == "":
			errs = append(errs, required(fp, ""))
		case subscripted && (base == "metadata.labels" || base == "metadata.annotations") && strings.HasSuffix(ref.FieldPath, "']"):
		case !slices.Contains(downwardAPIFieldPaths, ref.FieldPath):
			errs = append(errs, notSupported(fp, ref.FieldPath, downwardAPIFieldPaths...))
		}
	}
	return errs
}

func validateVolumeMounts(mounts []VolumeMount, p fieldPath, volumes map[string]bool) FieldErrors {
	var errs FieldErrors
	mountPaths := map[string]bool{}
	for i, m := range mounts {
		mp := p.Index(i)
		if m.Name == "" {
			errs = append(errs, required(mp.Child("name"), ""))
		} else if !volumes[m.Name] {
			errs = append(errs, invalid(mp.Child("name"), m.Name, "must match the name of a volume"))
		}
		if m.MountPath == "" {
			errs = append(errs, required(mp.Child("mountPath"), ""))
		} else if mountPaths[m.MountPath] {
			errs = append(errs, invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mountPaths[m.MountPath] = true
		if m.SubPath != "" {
			if strings.HasPrefix(m.SubPath, "/") {
				errs = append(errs, invalid(mp.Child("subPath"), m.SubPath, "must be a relative path"))
			}
			if containsDotDot(m.SubPath) {
				errs = append(errs, invalid(mp.Child("subPath"), m.SubPath, "must not contain '..'"))
			}
		}
	}
	return errs
}

// validateProbe checks a probe; liveness and startup probes must succeed once
// to count (successThreshold 1).
func validateProbe(probe *Probe, p fieldPath, successMustBeOne bool) FieldErrors {
	if probe == nil {
		return nil
	}
	errs := validateProbeHandler(&probe.ProbeHandler, p)
	for _, f := range []struct {
		name  string
		value int32
	}{
		{"initialDelaySeconds", probe.InitialDelaySeconds},
		{"timeoutSeconds", probe.TimeoutSeconds},
		{"periodSeconds", probe.PeriodSeconds},
		{"successThreshold", probe.SuccessThreshold},
		{"failureThreshold", probe.FailureThreshold},
	} {
		if f.value < 0 {
			errs = append(errs, invalid(p.Child(f.name), f.value, isNegativeMsg))
		}
	}
	if successMustBeOne && probe.SuccessThreshold != 1 {
		errs = append(errs, invalid(p.Child("successThreshold"), probe.SuccessThreshold, "must be 1"))
	}
	return errs
}

// validateProbeHandler checks that exactly one handler is given, and that one.
func validateProbeHandler(h *ProbeHandler, p fieldPath) FieldErrors {
	var errs FieldErrors
	handlers := 0
	if h.Exec != nil {
		handlers++
		if len(h.Exec.Command) == 0 {
			errs = append(errs, required(p.Child("exec", "command"), ""))
		}
	}
	if h.HTTPGet != nil {
		if handlers > 0 {
			errs = append(errs, forbidden(p.Child("httpGet"), "may not specify more than 1 handler type"))
		} else {
			handlers++
			errs = append(errs, validateHTTPGetAction(h.HTTPGet, p.Child("httpGet"))...)
		}
	}
	if h.TCPSocket != nil {
		if handlers > 0 {
			errs = append(errs, forbidden(p.Child("tcpSocket"), "may not specify more than 1 handler type"))
		} else {
			handlers++
			errs = append(errs, validatePortNumOrName(h.TCPSocket.Port, p.Child("tcpSocket", "port"))...)
		}
	}
	if handlers == 0 {
		errs = append(errs, required(p, "must specify a handler type"))
	}
	return errs
}

func validateHTTPGetAction(get *HTTPGetAction, p fieldPath) FieldErrors {
	var errs FieldErrors
	if get.Path == "" {
		errs = append(errs, required(p.Child("path"), ""))
	}
	errs = append(errs, validatePortNumOrName(get.Port, p.Child("port"))...)
	if get.Scheme != "HTTP" && get.Scheme != "HTTPS" {
		errs = append(errs, notSupported(p.Child("scheme"), get.Scheme, "HTTP", "HTTPS"))
	}
	for i, header := range get.HTTPHeaders {
		if header.Name == "" || strings.Trim(header.Name, "-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
			errs = append(errs, invalid(p.Child("httpHeaders").Index(i).Child("name"), header.Name,
				regexError("a valid HTTP header must consist of alphanumeric characters or '-'", "[-A-Za-z0-9]+", "X-Header-Name")))
		}
	}
	return errs
}

// validatePortNumOrName checks a port given as a number or as a port name.
func validatePortNumOrName(port IntOrString, p fieldPath) FieldErrors {
	var errs FieldErrors
	if port.IsString {
		for _, msg := range IsValidPortName(port.StrVal) {
			errs = append(errs, invalid(p, port.StrVal, msg))
		}
	} else {
		for _, msg := range isValidPortNum(int(port.IntVal)) {
			errs = append(errs, invalid(p, port.IntVal, msg))
		}
	}
	return errs
}

func validateDNS(spec *PodSpec, p fieldPath) FieldErrors {
	var errs FieldErrors
	switch spec.DNSPolicy {
	case DNSClusterFirst, DNSClusterFirstWithHostNet, DNSDefault, DNSNone:
	case "":
		errs = append(errs, required(p.Child("dnsPolicy"), ""))
	default:
		errs = append(errs, notSupported(p.Child("dnsPolicy"), spec.DNSPolicy, DNSClusterFirst, DNSClusterFirstWithHostNet, DNSDefault, DNSNone))
	}
	cp := p.Child("dnsConfig")
	config := spec.DNSConfig
	if config == nil {
		if spec.DNSPolicy == DNSNone {
			errs = append(errs, required(cp, "must provide `dnsConfig` when `dnsPolicy` is None"))
		}
		return errs
	}
	if spec.DNSPolicy == DNSNone && len(config.Nameservers) == 0 {
		errs = append(errs, required(cp.Child("nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"))
	}
	if len(config.Nameservers) > 3 {
		errs = append(errs, invalid(cp.Child("nameservers"), goSyntax{config.Nameservers}, "must not have more than 3 nameservers"))
	}
	for i, ns := range config.Nameservers {
		for _, msg := range isValidIP(ns) {
			errs = append(errs, invalid(cp.Child("nameservers").Index(i), ns, msg))
		}
	}
	if len(config.Searches) > 32 {
		errs = append(errs, invalid(cp.Child("searches"), goSyntax{config.Searches}, "must not have more than 32 search paths"))
	}
	for i, search := range config.Searches {
		for _, msg := range IsDNS1123Subdomain(strings.TrimSuffix(search, ".")) {
			errs = append(errs, invalid(cp.Child("searches").Index(i), search, msg))
		}
	}
	for i, opt := range config.Options {
		if opt.Name == "" {
			errs = append(errs, required(cp.Child("options").Index(i).Child("name"), "must not be empty"))
		}
	}
	return errs
}

func validateTolerations(tolerations []Toleration, p fieldPath) FieldErrors {
	var errs FieldErrors
	for i, t := range tolerations {
		tp := p.Index(i)
		if t.Key != "" {
			for _, msg := range IsQualifiedName(t.Key) {
				errs = append(errs, invalid(tp.Child("key"), t.Key, msg))
			}
		}
		switch t.Operator {
		case "", "Equal":
			if t.Key == "" {
				errs = append(errs, invalid(tp.Child("operator"), t.Operator,
					"operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
			}
			for _, msg := range IsValidLabelValue(t.Value) {
				errs = append(errs, invalid(tp.Child("value"), t.Value, msg))
			}
		case "Exists":
			if t.Value != "" {
				errs = append(errs, invalid(tp.Child("operator"), t.Value, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, notSupported(tp.Child("operator"), t.Operator, "Equal", "Exists"))
		}
		switch t.Effect {
		case "", TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute:
		default:
			errs = append(errs, notSupported(tp.Child("effect"), t.Effect, TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute))
		}
		if t.TolerationSeconds != nil && t.Effect != TaintNoExecute {
			errs = append(errs, invalid(tp.Child("effect"), t.Effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
	}
	return errs
}

// podUpdateForbiddenMsg lists, in Kubernetes' words, what a Pod update may change.
const podUpdateForbiddenMsg = "pod updates may not change fields other than `spec.containers[*].image`," +
	"`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations)," +
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"

// validatePodUpdate allows only the few spec changes Kubernetes allows: container
// images, activeDeadlineSeconds, added tolerations, and setting nodeName once.
func validatePodUpdate(newPod, oldPod *Pod) FieldErrors {
	var errs FieldErrors
	if oldPod.Spec.NodeName != "" && newPod.Spec.NodeName != oldPod.Spec.NodeName {
		errs = append(errs, invalid("spec.nodeName", newPod.Spec.NodeName, fieldImmutableMsg))
	}
	// Take the mutable fields from the old spec; what differs then is forbidden.
	spec := DeepCopy(newPod.Spec)
	copyImages(spec.Containers, oldPod.Spec.Containers)
	copyImages(spec.InitContainers, oldPod.Spec.InitContainers)
	spec.ActiveDeadlineSeconds = oldPod.Spec.ActiveDeadlineSeconds
	spec.NodeName = oldPod.Spec.NodeName
	if includesAll(spec.Tolerations, oldPod.Spec.Tolerations) {
		spec.Tolerations = oldPod.Spec.Tolerations
	}
	if old := oldPod.Spec.TerminationGracePeriodSeconds; old != nil && *old < 0 {
		if t := spec.TerminationGracePeriodSeconds; t != nil && *t == 1 {
			spec.TerminationGracePeriodSeconds = old
		}
	}
	if !jsonEqual(spec, oldPod.Spec) {
		errs = append(errs, forbidden("spec", podUpdateForbiddenMsg))
	}
	return errs
}

func copyImages(dst, src []Container) {
	for i := range dst {
		if i < len(src) {
			dst[i].Image = src[i].Image
		}
	}
}

// includesAll reports whether every toleration of old is still in tolerations.
func includesAll(tolerations, old []Toleration) bool {
	for _, o := range old {
		found := false
		for _, t := range tolerations {
			if jsonEqual(t, o) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
