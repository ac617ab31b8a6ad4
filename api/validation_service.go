package api

import (
	"fmt"
	"net/netip"
	"strings"
)

// Validation of Services.

// Max session affinity timeout (one day), as in Kubernetes.
const maxClientIPAffinitySeconds = 86400

// IP families and family policies of a Service.
const (
	IPv4Protocol                   = "IPv4"
	IPv6Protocol                   = "IPv6"
	IPFamilyPolicySingleStack      = "SingleStack"
	IPFamilyPolicyPreferDualStack  = "PreferDualStack"
	IPFamilyPolicyRequireDualStack = "RequireDualStack"
)

func validateService(svc *Service) FieldErrors {
	errs := validateObjectMeta(&svc.ObjectMeta, "Service", IsDNS1035Label)
	spec := &svc.Spec
	p := fieldPath("spec")

	switch spec.Type {
	case ServiceTypeClusterIP, ServiceTypeNodePort, ServiceTypeLoadBalancer, ServiceTypeExternalName:
	case "":
		errs = append(errs, required(p.Child("type"), ""))
	default:
		errs = append(errs, notSupported(p.Child("type"), spec.Type,
			ServiceTypeClusterIP, ServiceTypeExternalName, ServiceTypeLoadBalancer, ServiceTypeNodePort))
	}

	if len(spec.Ports) == 0 && !svc.IsHeadless() && spec.Type != ServiceTypeExternalName {
		errs = append(errs, required(p.Child("ports"), ""))
	}
	errs = append(errs, validateServicePorts(spec, p.Child("ports"))...)
	errs = append(errs, validateClusterIPs(spec, p)...)

	if spec.Type == ServiceTypeExternalName {
		name := strings.TrimSuffix(spec.ExternalName, ".")
		if name == "" {
			errs = append(errs, required(p.Child("externalName"), ""))
		} else {
			for _, msg := range IsDNS1123Subdomain(name) {
				errs = append(errs, invalid(p.Child("externalName"), spec.ExternalName, msg))
			}
		}
	}

	switch spec.SessionAffinity {
	case SessionAffinityClientIP:
		errs = append(errs, validateClientIPAffinity(spec.SessionAffinityConfig, p.Child("sessionAffinityConfig"))...)
	case SessionAffinityNone:
		if spec.SessionAffinityConfig != nil {
			errs = append(errs, forbidden(p.Child("sessionAffinityConfig"), "must not be set when session affinity is None"))
		}
	case "":
		errs = append(errs, required(p.Child("sessionAffinity"), ""))
	default:
		errs = append(errs, notSupported(p.Child("sessionAffinity"), spec.SessionAffinity, SessionAffinityClientIP, SessionAffinityNone))
	}

	externallyReachable := spec.Type == ServiceTypeNodePort || spec.Type == ServiceTypeLoadBalancer
	switch {
	case externallyReachable && spec.ExternalTrafficPolicy == "":
		errs = append(errs, required(p.Child("externalTrafficPolicy"), ""))
	case externallyReachable && spec.ExternalTrafficPolicy != TrafficPolicyCluster && spec.ExternalTrafficPolicy != TrafficPolicyLocal:
		errs = append(errs, notSupported(p.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy, TrafficPolicyCluster, TrafficPolicyLocal))
	case !externallyReachable && spec.ExternalTrafficPolicy != "":
		errs = append(errs, invalid(p.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy,
			"may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
	}
	if spec.Type != ServiceTypeExternalName {
		switch policy := spec.InternalTrafficPolicy; {
		case policy == nil:
			errs = append(errs, required(p.Child("internalTrafficPolicy"), ""))
		case *policy != TrafficPolicyCluster && *policy != TrafficPolicyLocal:
			errs = append(errs, notSupported(p.Child("internalTrafficPolicy"), *policy, TrafficPolicyCluster, TrafficPolicyLocal))
		}
	}
	if hc := spec.HealthCheckNodePort; hc != 0 {
		for _, msg := range isValidPortNum(int(hc)) {
			errs = append(errs, invalid(p.Child("healthCheckNodePort"), hc, msg))
		}
	}

	for i, ip := range spec.ExternalIPs {
		for _, msg := range isValidIP(ip) {
			errs = append(errs, invalid(p.Child("externalIPs").Index(i), ip, msg))
		}
	}
	if spec.LoadBalancerIP != "" {
		for _, msg := range isValidIP(spec.LoadBalancerIP) {
			errs = append(errs, invalid(p.Child("loadBalancerIP"), spec.LoadBalancerIP, msg))
		}
	}
	if len(spec.LoadBalancerSourceRanges) > 0 && spec.Type != ServiceTypeLoadBalancer {
		errs = append(errs, forbidden(p.Child("loadBalancerSourceRanges"), "may only be used when `type` is 'LoadBalancer'"))
	}
	for i, cidr := range spec.LoadBalancerSourceRanges {
		for _, msg := range isValidCIDR(strings.TrimSpace(cidr)) {
			errs = append(errs, invalid(p.Child("loadBalancerSourceRanges").Index(i), cidr, msg))
		}
	}
	errs = append(errs, validateLabels(spec.Selector, p.Child("selector"))...)
	return errs
}

func validateServicePorts(spec *ServiceSpec, p fieldPath) FieldErrors {
	var errs FieldErrors
	names := map[string]bool{}
	portProtocols := map[string]bool{}
	nodePorts := map[string]bool{}
	for i, sp := range spec.Ports {
		pp := p.Index(i)
		switch {
		case sp.Name == "" && len(spec.Ports) > 1:
			errs = append(errs, required(pp.Child("name"), ""))
		case sp.Name != "":
			for _, msg := range IsDNS1123Label(sp.Name) {
				errs = append(errs, invalid(pp.Child("name"), sp.Name, msg))
			}
			if names[sp.Name] {
				errs = append(errs, duplicate(pp.Child("name"), sp.Name))
			}
			names[sp.Name] = true
		}
		for _, msg := range isValidPortNum(int(sp.Port)) {
			errs = append(errs, invalid(pp.Child("port"), sp.Port, msg))
		}
		errs = append(errs, validateProtocol(sp.Protocol, pp.Child("protocol"))...)
		errs = append(errs, validatePortNumOrName(sp.TargetPort, pp.Child("targetPort"))...)

		portProtocol := fmt.Sprintf("%d/%s", sp.Port, sp.Protocol)
		if portProtocols[portProtocol] {
			errs = append(errs, duplicate(pp, portProtocol))
		}
		portProtocols[portProtocol] = true

		if sp.NodePort == 0 {
			continue
		}
		for _, msg := range isValidPortNum(int(sp.NodePort)) {
			errs = append(errs, invalid(pp.Child("nodePort"), sp.NodePort, msg))
		}
		if spec.Type == ServiceTypeClusterIP {
			errs = append(errs, forbidden(pp.Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
		}
		nodePort := fmt.Sprintf("%d/%s", sp.NodePort, sp.Protocol)
		if nodePorts[nodePort] {
			errs = append(errs, duplicate(pp.Child("nodePort"), sp.NodePort))
		}
		nodePorts[nodePort] = true
	}
	return errs
}

// validateClusterIPs checks clusterIP, clusterIPs and the IP families. kubelite
// allocates IPv4 service addresses only.
func validateClusterIPs(spec *ServiceSpec, p fieldPath) FieldErrors {
	var errs FieldErrors
	ipPath := p.Child("clusterIP")
	switch {
	case spec.Type == ServiceTypeExternalName:
		if spec.ClusterIP != "" {
			errs = append(errs, invalid(ipPath, spec.ClusterIP, "may not be set for ExternalName services"))
		}
	case spec.ClusterIP == ClusterIPNone:
		if spec.Type == ServiceTypeNodePort || spec.Type == ServiceTypeLoadBalancer {
			errs = append(errs, invalid(ipPath, spec.ClusterIP, fmt.Sprintf("may not be set to 'None' for %s services", spec.Type)))
		}
	case spec.ClusterIP != "":
		errs = append(errs, validateIPv4(spec.ClusterIP, ipPath)...)
	}

	ipsPath := p.Child("clusterIPs")
	for i, ip := range spec.ClusterIPs {
		if ip == ClusterIPNone {
			if len(spec.ClusterIPs) > 1 {
				errs = append(errs, invalid(ipsPath.Index(i), ip, "'None' must be the only value"))
			}
			continue
		}
		errs = append(errs, validateIPv4(ip, ipsPath.Index(i))...)
	}
	if len(spec.ClusterIPs) > 0 && spec.ClusterIPs[0] != spec.ClusterIP {
		errs = append(errs, invalid(ipsPath.Index(0), spec.ClusterIPs[0], "must match spec.clusterIP"))
	}

	if spec.IPFamilyPolicy != nil {
		switch policy := *spec.IPFamilyPolicy; policy {
		case IPFamilyPolicySingleStack, IPFamilyPolicyPreferDualStack, IPFamilyPolicyRequireDualStack:
		default:
			errs = append(errs, notSupported(p.Child("ipFamilyPolicy"), policy,
				IPFamilyPolicyPreferDualStack, IPFamilyPolicyRequireDualStack, IPFamilyPolicySingleStack))
		}
	}
	seen := map[string]bool{}
	for i, family := range spec.IPFamilies {
		fp := p.Child("ipFamilies").Index(i)
		switch {
		case family != IPv4Protocol && family != IPv6Protocol:
			errs = append(errs, notSupported(fp, family, IPv4Protocol, IPv6Protocol))
		case seen[family]:
			errs = append(errs, duplicate(fp, family))
		}
		seen[family] = true
	}
	return errs
}

// validateIPv4 checks a service address: an IP, and an IPv4 one.
func validateIPv4(ip string, p fieldPath) FieldErrors {
	if msgs := isValidIP(ip); len(msgs) > 0 {
		return FieldErrors{invalid(p, ip, msgs[0])}
	}
	if addr, _ := netip.ParseAddr(ip); !addr.Is4() {
		return FieldErrors{invalid(p, ip, "expected an IPv4 value as indicated by `ipFamilies[0]`")}
	}
	return nil
}

func validateClientIPAffinity(config *SessionAffinityConfig, p fieldPath) FieldErrors {
	const detail = "when session affinity type is ClientIP"
	switch {
	case config == nil:
		return FieldErrors{required(p, detail)}
	case config.ClientIP == nil:
		return FieldErrors{required(p.Child("clientIP"), detail)}
	case config.ClientIP.TimeoutSeconds == nil:
		return FieldErrors{required(p.Child("clientIP", "timeoutSeconds"), detail)}
	}
	if t := *config.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
		return FieldErrors{invalid(p.Child("clientIP", "timeoutSeconds"), t,
			fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds))}
	}
	return nil
}

// validateServiceUpdate keeps the cluster IP once allocated; only turning the
// Service into an ExternalName one releases it.
func validateServiceUpdate(newSvc, oldSvc *Service) FieldErrors {
	if oldSvc.Spec.ClusterIP == "" || newSvc.Spec.Type == ServiceTypeExternalName {
		return nil
	}
	if newSvc.Spec.ClusterIP != oldSvc.Spec.ClusterIP {
		return FieldErrors{invalid("spec.clusterIP", newSvc.Spec.ClusterIP, fieldImmutableMsg)}
	}
	return nil
}
