package podworker

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"kubelite/api"
)

// DNSSettings are the node's DNS facts a Pod's resolv.conf is made from.
type DNSSettings struct {
	ClusterDNS    []string // the cluster DNS Service's IP, 10.96.0.10
	ClusterDomain string   // cluster.local
	// HostResolvConf is the node's own resolv.conf, for dnsPolicy Default.
	HostResolvConf []byte
}

// resolvConf is a Pod's /etc/resolv.conf, by its dnsPolicy:
//
//   - ClusterFirst (the default): the cluster DNS server, searching the
//     Pod's namespace first, with ndots:5, so that "web" finds the
//     Service web of the Pod's namespace:
//
//     nameserver 10.96.0.10
//     search default.svc.cluster.local svc.cluster.local cluster.local
//     options ndots:5
//
//   - Default: the node's own resolv.conf (also what a hostNetwork Pod
//     with ClusterFirst gets; ClusterFirstWithHostNet opts back in);
//
//   - None: only what spec.dnsConfig says.
//
// spec.dnsConfig's nameservers and searches are added to the policy's,
// and its options override those of the same name.
func resolvConf(pod *api.Pod, dns DNSSettings) []byte {
	var nameservers, searches []string
	var options []string
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = api.DNSClusterFirst
	}
	if policy == api.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = api.DNSDefault
	}
	switch policy {
	case api.DNSClusterFirst, api.DNSClusterFirstWithHostNet:
		if len(dns.ClusterDNS) == 0 {
			// No cluster DNS configured: the kubelet falls back to the node's.
			nameservers, searches, options = parseResolvConf(dns.HostResolvConf)
			break
		}
		nameservers = slices.Clone(dns.ClusterDNS)
		domain := strings.TrimSuffix(dns.ClusterDomain, ".")
		searches = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
		options = []string{"ndots:5"}
	case api.DNSDefault:
		nameservers, searches, options = parseResolvConf(dns.HostResolvConf)
	case api.DNSNone:
	}
	if cfg := pod.Spec.DNSConfig; cfg != nil {
		nameservers = appendNew(nameservers, cfg.Nameservers...)
		searches = appendNew(searches, cfg.Searches...)
		for _, o := range cfg.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			options = slices.DeleteFunc(options, func(existing string) bool {
				name, _, _ := strings.Cut(existing, ":")
				return name == o.Name
			})
			options = append(options, opt)
		}
	}
	var b bytes.Buffer
	for _, ns := range nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes()
}

// parseResolvConf reads the nameserver, search and options lines of a
// resolv.conf.
func parseResolvConf(data []byte) (nameservers, searches, options []string) {
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
			continue
		}
		switch fields[0] {
		case "nameserver":
			nameservers = append(nameservers, fields[1])
		case "search", "domain":
			searches = fields[1:] // the last one wins, as in the resolver
		case "options":
			options = append(options, fields[1:]...)
		}
	}
	return nameservers, searches, options
}

func appendNew(list []string, items ...string) []string {
	for _, item := range items {
		if !slices.Contains(list, item) {
			list = append(list, item)
		}
	}
	return list
}

// podHostname is the Pod's host name: spec.hostname, else its name, cut to
// a DNS label's 63 characters.
func podHostname(pod *api.Pod) string {
	name := pod.Spec.Hostname
	if name == "" {
		name = pod.Name
	}
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-.")
	}
	return name
}

// hostsFile is a Pod's /etc/hosts, as the kubelet writes it: localhost, and
// the Pod's own IP with its host name (and its fully qualified name when it
// has a subdomain, the way a headless Service names its Pods).
func hostsFile(pod *api.Pod, podIP, clusterDomain string) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file (kubelite).\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	if podIP != "" {
		hostname := podHostname(pod)
		if pod.Spec.Subdomain != "" {
			fqdn := fmt.Sprintf("%s.%s.%s.svc.%s", hostname, pod.Spec.Subdomain, pod.Namespace, strings.TrimSuffix(clusterDomain, "."))
			fmt.Fprintf(&b, "%s\t%s\t%s\n", podIP, fqdn, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", podIP, hostname)
		}
	}
	return b.Bytes()
}

// writeIfChanged writes data to path unless the file holds it already. It
// writes in place, never by rename: the file is bind-mounted into running
// containers, and a bind mount keeps the inode it was made with.
func writeIfChanged(path string, data []byte) error {
	if current, err := os.ReadFile(path); err == nil && bytes.Equal(current, data) {
		return nil
	}
	return os.WriteFile(path, data, 0o644)
}
