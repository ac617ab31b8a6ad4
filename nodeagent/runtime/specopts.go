package runtime

import (
	"context"
	"errors"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The OCI spec options of a Pod's container, in containerd's oci.SpecOpts
// shape so that they compose with containerd's own (oci.WithImageConfig,
// oci.WithEnv, ...).

// WithNetworkNamespace makes the container join the network namespace at
// path — the Pod's, made by CNI — instead of getting a new, empty one.
func WithNetworkNamespace(path string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = path
				return nil
			}
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
		return nil
	}
}

// WithBindMount bind-mounts the host file or folder source at destination
// in the container, replacing any mount already there.
func WithBindMount(source, destination string, readOnly bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		options := []string{"rbind", "rprivate"}
		if readOnly {
			options = append(options, "ro")
		}
		mount := specs.Mount{Destination: destination, Type: "bind", Source: source, Options: options}
		for i, m := range s.Mounts {
			if m.Destination == destination {
				s.Mounts[i] = mount
				return nil
			}
		}
		s.Mounts = append(s.Mounts, mount)
		return nil
	}
}

// WithResolvConf mounts the Pod's resolv.conf (cluster DNS, search path,
// ndots) at /etc/resolv.conf.
func WithResolvConf(path string) oci.SpecOpts {
	return WithBindMount(path, "/etc/resolv.conf", true)
}

// WithHostsFile mounts the Pod's hosts file at /etc/hosts.
func WithHostsFile(path string) oci.SpecOpts {
	return WithBindMount(path, "/etc/hosts", true)
}

// WithHostnameFile mounts the Pod's hostname file at /etc/hostname.
func WithHostnameFile(path string) oci.SpecOpts {
	return WithBindMount(path, "/etc/hostname", true)
}

// WithCommand sets the process arguments the way Kubernetes combines a
// container's command and args with its image's entrypoint and cmd.
func WithCommand(imageEntrypoint, imageCmd, command, args []string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		argv := containerArgs(imageEntrypoint, imageCmd, command, args)
		if len(argv) == 0 {
			return errors.New("no command: neither the container nor its image gives one")
		}
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.Args = argv
		return nil
	}
}

// containerArgs is Kubernetes' rule: command replaces the entrypoint and
// drops the image's cmd; args replaces the cmd.
//
//	command  args   runs
//	-        -      entrypoint + cmd
//	-        A      entrypoint + A
//	C        -      C
//	C        A      C + A
func containerArgs(imageEntrypoint, imageCmd, command, args []string) []string {
	entrypoint, cmd := imageEntrypoint, imageCmd
	if len(command) > 0 {
		entrypoint, cmd = command, nil
	}
	if len(args) > 0 {
		cmd = args
	}
	return append(append([]string(nil), entrypoint...), cmd...)
}
