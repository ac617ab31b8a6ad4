package network

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// NetworkName is the name of the CNI network in the rendered configuration.
const NetworkName = "kubelite"

// PodInterface is the pod's side of its veth, inside the pod's namespace.
const PodInterface = "eth0"

// cniVersion is the newest spec version Debian's plugins (1.1.1) speak.
const cniVersion = "1.0.0"

// confListSettings is what the rendered configuration depends on.
type confListSettings struct {
	BridgeName string
	PodCIDR    netip.Prefix
	IPAMDir    string // host-local's store, under the agent's data dir
	MTU        int    // 0: the bridge plugin's default
}

// renderConfList is the CNI configuration of the pod network:
//
//   - bridge: a veth per pod on a bridge that is the pods' gateway, with
//     hairpin mode so that a pod reaches itself through a Service;
//     masquerade is ours (ipMasq false), since only traffic that leaves the
//     cluster CIDR may be masqueraded;
//   - host-local IPAM over the node's podCIDR, its store in our data dir so
//     that agents sharing a machine never share it;
//   - portmap for hostPort;
//   - loopback, which brings up lo in the pod's namespace (it passes the
//     bridge's result through).
func renderConfList(s confListSettings) ([]byte, error) {
	type ipRange struct {
		Subnet string `json:"subnet"`
	}
	type route struct {
		Dst string `json:"dst"`
	}
	type ipam struct {
		Type    string      `json:"type"`
		Ranges  [][]ipRange `json:"ranges"`
		Routes  []route     `json:"routes"`
		DataDir string      `json:"dataDir"`
	}
	bridge := map[string]any{
		"type":        "bridge",
		"bridge":      s.BridgeName,
		"isGateway":   true,
		"ipMasq":      false,
		"hairpinMode": true,
		"ipam": ipam{
			Type:    "host-local",
			Ranges:  [][]ipRange{{{Subnet: s.PodCIDR.Masked().String()}}},
			Routes:  []route{{Dst: "0.0.0.0/0"}},
			DataDir: s.IPAMDir,
		},
	}
	if s.MTU > 0 {
		bridge["mtu"] = s.MTU
	}
	conf := map[string]any{
		"cniVersion": cniVersion,
		"name":       NetworkName,
		"plugins": []any{
			bridge,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
			map[string]any{"type": "loopback"},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// PortMapping is a hostPort of a Pod, for the portmap plugin.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp, udp or sctp
	HostIP        string `json:"hostIP,omitempty"`
}

// cniAttachment names one Pod's attachment to the network: the CNI
// container ID is the Pod's UID, stable across agent restarts.
type cniAttachment struct {
	PodUID, PodNamespace, PodName string
	NetNSPath                     string // "" on DEL when the namespace is gone
	PortMappings                  []PortMapping
}

func (a cniAttachment) runtimeConf() *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: a.PodUID,
		NetNS:       a.NetNSPath,
		IfName:      PodInterface,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", a.PodNamespace},
			{"K8S_POD_NAME", a.PodName},
			{"K8S_POD_INFRA_CONTAINER_ID", a.PodUID},
			{"K8S_POD_UID", a.PodUID},
		},
	}
	if len(a.PortMappings) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": a.PortMappings}
	}
	return rt
}

// cniPlugins runs the configured plugins through libcni, inside the node's
// network namespace.
type cniPlugins struct {
	config *libcni.CNIConfig
	list   *libcni.NetworkConfigList
	dirs   []string
}

func newCNIPlugins(node Namespace, pluginDirs []string, cacheDir string, confList []byte, log *slog.Logger) (*cniPlugins, error) {
	list, err := libcni.ConfListFromBytes(confList)
	if err != nil {
		return nil, fmt.Errorf("CNI configuration: %w", err)
	}
	exec := &namespacedExec{node: node, raw: &invoke.RawExec{Stderr: pluginLog{log}}}
	return &cniPlugins{config: libcni.NewCNIConfigWithCacheDir(pluginDirs, cacheDir, exec), list: list, dirs: pluginDirs}, nil
}

// check makes sure every plugin of the configuration is installed, so that
// a missing one is reported when the node starts, not at its first pod.
func (p *cniPlugins) check() error {
	for _, plugin := range p.list.Plugins {
		if _, err := invoke.FindInPath(plugin.Network.Type, p.dirs); err != nil {
			return fmt.Errorf("CNI plugin %s not found in %s (install Debian's containernetworking-plugins): %w",
				plugin.Network.Type, strings.Join(p.dirs, ":"), err)
		}
	}
	return nil
}

// add attaches a Pod and returns its IPv4 address.
func (p *cniPlugins) add(ctx context.Context, a cniAttachment) (netip.Addr, error) {
	raw, err := p.config.AddNetworkList(ctx, p.list, a.runtimeConf())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("CNI ADD: %w", err)
	}
	result, err := types100.NewResultFromResult(raw)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("CNI ADD: result: %w", err)
	}
	for _, ip := range result.IPs {
		if addr, ok := netip.AddrFromSlice(ip.Address.IP); ok && addr.Unmap().Is4() {
			return addr.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("CNI ADD: no IPv4 address in the result %v", result.IPs)
}

// del detaches a Pod: the bridge plugin removes its veth, host-local
// releases its address. Deleting what is already gone is not an error.
func (p *cniPlugins) del(ctx context.Context, a cniAttachment) error {
	if err := p.config.DelNetworkList(ctx, p.list, a.runtimeConf()); err != nil {
		return fmt.Errorf("CNI DEL: %w", err)
	}
	return nil
}

// namespacedExec runs CNI plugins inside the node's network namespace: the
// bridge plugin creates the bridge and the host side of each veth in the
// namespace it runs in.
type namespacedExec struct {
	version.PluginDecoder
	node Namespace
	raw  *invoke.RawExec
}

func (e *namespacedExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	var out []byte
	err := e.node.Do(func() error {
		var err error
		out, err = e.raw.ExecPlugin(ctx, pluginPath, stdin, environ)
		return err
	})
	return out, err
}

func (e *namespacedExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

var _ invoke.Exec = (*namespacedExec)(nil)

// pluginLog passes what plugins write on stderr to the agent's log.
type pluginLog struct{ log *slog.Logger }

func (l pluginLog) Write(p []byte) (int, error) {
	if msg := strings.TrimSpace(string(p)); msg != "" {
		l.log.Debug("CNI plugin output", "stderr", msg)
	}
	return len(p), nil
}

var _ io.Writer = pluginLog{}
