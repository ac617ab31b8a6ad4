package podworker

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"kubelite/api"
	"kubelite/nodeagent/runtime"
)

// Labels the agent puts on containers, beside the runtime's own, so that a
// restarted agent knows what it adopts.
const (
	labelSandboxID = "kubelite.nodeagent/sandbox-id" // the pod network the container joined
	labelImageID   = "kubelite.nodeagent/image-id"   // for status.containerStatuses[].imageID
)

// The files of a Pod, under <PodsDir>/<uid>, bind-mounted into each of its
// containers.
const (
	hostsFileName      = "etc-hosts"
	resolvConfFileName = "resolv.conf"
	hostnameFileName   = "hostname"
)

// writePodFiles writes the Pod's /etc/hosts, /etc/resolv.conf and
// /etc/hostname, and makes its emptyDir volumes.
func (w *podWorker) writePodFiles(pod *api.Pod) error {
	dir := w.m.podDir(pod.UID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pod files: %w", err)
	}
	hostname := podHostname(pod)
	if pod.Spec.HostNetwork {
		hostname = w.m.cfg.NodeName
	}
	files := map[string][]byte{
		hostsFileName:      hostsFile(pod, w.podIP, w.m.cfg.DNS.ClusterDomain),
		resolvConfFileName: resolvConf(pod, w.m.cfg.DNS),
		hostnameFileName:   []byte(hostname + "\n"),
	}
	for name, content := range files {
		if err := writeIfChanged(filepath.Join(dir, name), content); err != nil {
			return fmt.Errorf("pod files: %w", err)
		}
	}
	return nil
}

// containerSpec is what the runtime is asked to create for one attempt of
// a container.
func (w *podWorker) containerSpec(pod *api.Pod, c *api.Container, attempt int, img runtime.Image) (runtime.ContainerSpec, error) {
	env, err := containerEnv(c, podFields{pod: pod, podIP: w.podIP, hostIP: w.m.cfg.NodeIP})
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	mounts, err := w.volumeMounts(pod, c)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	dir := w.m.podDir(pod.UID)
	hostname := podHostname(pod)
	if pod.Spec.HostNetwork {
		hostname = w.m.cfg.NodeName
	}
	return runtime.ContainerSpec{
		PodUID:         pod.UID,
		PodName:        pod.Name,
		PodNamespace:   pod.Namespace,
		Name:           c.Name,
		Attempt:        attempt,
		Image:          img.Name,
		Command:        expandArgs(c.Command, env),
		Args:           expandArgs(c.Args, env),
		Env:            env,
		WorkingDir:     c.WorkingDir,
		Hostname:       hostname,
		NetNSPath:      w.netNSPath(pod),
		ResolvConfPath: filepath.Join(dir, resolvConfFileName),
		HostsPath:      filepath.Join(dir, hostsFileName),
		HostnamePath:   filepath.Join(dir, hostnameFileName),
		Mounts:         mounts,
		LogPath:        filepath.Join(w.m.podLogDir(pod), c.Name, strconv.Itoa(attempt)+".log"),
		TTY:            c.TTY,
		Stdin:          c.Stdin,
		Labels: map[string]string{
			labelSandboxID: w.sandboxID(pod),
			labelImageID:   imageID(img),
		},
	}, nil
}

// volumeMounts resolves a container's volumeMounts to host paths:
// emptyDir volumes are folders of the Pod's own, hostPath volumes the
// node's paths.
func (w *podWorker) volumeMounts(pod *api.Pod, c *api.Container) ([]runtime.Mount, error) {
	if len(c.VolumeMounts) == 0 {
		return nil, nil
	}
	sources := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.EmptyDir != nil:
			dir := filepath.Join(w.m.podDir(pod.UID), "volumes", v.Name)
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			os.Chmod(dir, 0o777) // any user of the container may write, as in Kubernetes
			sources[v.Name] = dir
		case v.HostPath != nil:
			if err := ensureHostPath(v.HostPath); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			sources[v.Name] = v.HostPath.Path
		}
	}
	mounts := make([]runtime.Mount, 0, len(c.VolumeMounts))
	for _, m := range c.VolumeMounts {
		source, ok := sources[m.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %s: no volume of that name (emptyDir and hostPath are supported)", m.Name)
		}
		if m.SubPath != "" {
			source = filepath.Join(source, m.SubPath)
			if _, err := os.Stat(source); os.IsNotExist(err) {
				if err := os.MkdirAll(source, 0o777); err != nil {
					return nil, fmt.Errorf("volumeMount %s: %w", m.Name, err)
				}
			}
		}
		mounts = append(mounts, runtime.Mount{HostPath: source, ContainerPath: m.MountPath, ReadOnly: m.ReadOnly})
	}
	return mounts, nil
}

// ensureHostPath checks or creates a hostPath volume as its type says.
func ensureHostPath(hp *api.HostPathVolumeSource) error {
	switch hp.Type {
	case "DirectoryOrCreate":
		return os.MkdirAll(hp.Path, 0o755)
	case "FileOrCreate":
		if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	case "Directory", "File", "Socket", "CharDevice", "BlockDevice":
		_, err := os.Stat(hp.Path)
		return err
	default: // "": no check, as in Kubernetes
		return nil
	}
}
