package runtime

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"
)

// PullPolicy says when EnsureImage contacts a registry, as a Pod's
// imagePullPolicy does.
type PullPolicy string

const (
	// PullAlways pulls every time; when the registry cannot be reached, an
	// image already present is used (and one imported from a tarball is
	// used without asking the registry), so :latest images work offline.
	PullAlways PullPolicy = "Always"
	// PullIfNotPresent pulls only when the image is missing. The empty
	// policy means the same.
	PullIfNotPresent PullPolicy = "IfNotPresent"
	// PullNever never pulls: the image must have been imported.
	PullNever PullPolicy = "Never"
)

// Image errors, named after the reasons a Pod's container status shows. The
// agent reports ErrImagePull, then ImagePullBackOff while it waits to retry.
// Test with errors.Is; ImageErrorReason gives the reason string.
var (
	ErrImagePull        = errors.New("ErrImagePull")
	ErrImageNeverPull   = errors.New("ErrImageNeverPull")
	ErrInvalidImageName = errors.New("InvalidImageName")
)

// ImageErrorReason returns the container-status reason for an error from
// EnsureImage ("ErrImagePull", "ErrImageNeverPull", "InvalidImageName"), or
// "" for any other error.
func ImageErrorReason(err error) string {
	for _, reason := range []error{ErrInvalidImageName, ErrImageNeverPull, ErrImagePull} {
		if errors.Is(err, reason) {
			return reason.Error()
		}
	}
	return ""
}

// labelImportedFrom marks images that came from a tarball in the images
// folder; PullAlways does not ask a registry for them.
const labelImportedFrom = labelPrefix + "imported-from"

// Image is an image as it is stored in containerd.
type Image struct {
	Name   string // normalised reference: docker.io/library/httpd:latest
	Digest string // digest of its manifest or index: sha256:...
}

// NormalizeImage returns the full reference Docker would use for ref:
// "httpd" is docker.io/library/httpd:latest, "myreg:5000/x/y" is
// myreg:5000/x/y:latest, and a reference with a digest keeps the digest
// and drops any tag.
func NormalizeImage(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrInvalidImageName, ref, err)
	}
	return named.String(), nil
}

// EnsureImage makes the image ref present and unpacked, pulling it as
// policy says.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, policy PullPolicy) (Image, error) {
	ctx = r.withNamespace(ctx)
	name, err := NormalizeImage(ref)
	if err != nil {
		return Image{}, err
	}
	local, err := r.client.GetImage(ctx, name)
	switch {
	case errdefs.IsNotFound(err):
		local = nil
	case err != nil:
		return Image{}, fmt.Errorf("look up image %s: %w", name, err)
	}

	switch policy {
	case PullNever:
		if local == nil {
			return Image{}, fmt.Errorf("%w: image %s is not present and the pull policy is Never", ErrImageNeverPull, name)
		}
		return r.unpacked(ctx, local)
	case PullIfNotPresent, "":
		if local != nil {
			return r.unpacked(ctx, local)
		}
		return r.pull(ctx, name)
	case PullAlways:
		if local != nil && local.Labels()[labelImportedFrom] != "" {
			r.log.Debug("image imported from a tarball; not pulling", "image", name)
			return r.unpacked(ctx, local)
		}
		pulled, err := r.pull(ctx, name)
		if err != nil && local != nil {
			r.log.Warn("pull failed; using the image already present", "image", name, "err", err)
			return r.unpacked(ctx, local)
		}
		return pulled, err
	default:
		return Image{}, fmt.Errorf("unknown image pull policy %q (want Always, IfNotPresent or Never)", policy)
	}
}

func (r *Runtime) pull(ctx context.Context, name string) (Image, error) {
	r.log.Info("pulling image", "image", name)
	start := time.Now()
	img, err := r.client.Pull(ctx, name,
		containerd.WithResolver(r.resolver()),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(r.snapshotter))
	if err != nil {
		return Image{}, fmt.Errorf("%w: %s: %w", ErrImagePull, name, err)
	}
	size, _ := img.Size(ctx)
	r.log.Info("pulled image", "image", name, "digest", img.Target().Digest, "bytes", size, "took", time.Since(start).Round(time.Millisecond))
	return Image{Name: img.Name(), Digest: img.Target().Digest.String()}, nil
}

// resolver reaches registries over HTTPS, except loopback ones and those
// listed in Config.PlainHTTPRegistries, which it reaches over plain HTTP.
func (r *Runtime) resolver() remotes.Resolver {
	plainHTTP := func(host string) (bool, error) {
		if local, err := docker.MatchLocalhost(host); local || err != nil {
			return local, err
		}
		return slices.Contains(r.plainHTTPRegistries, host), nil
	}
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(plainHTTP)),
	})
}

// unpacked makes sure img has a snapshot to start containers from.
func (r *Runtime) unpacked(ctx context.Context, img containerd.Image) (Image, error) {
	done, err := img.IsUnpacked(ctx, r.snapshotter)
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", img.Name(), err)
	}
	if !done {
		if err := img.Unpack(ctx, r.snapshotter); err != nil {
			return Image{}, fmt.Errorf("unpack image %s: %w", img.Name(), err)
		}
	}
	return Image{Name: img.Name(), Digest: img.Target().Digest.String()}, nil
}

// importStamp identifies one version of a tarball, so ImportDir imports a
// file again only when it has changed.
type importStamp struct {
	size    int64
	modTime time.Time
}

// ImportDir imports every image tarball (*.tar, *.tar.gz, *.tgz; OCI image
// layout or docker-archive) in dir and unpacks it, as k3s does with its
// airgap images. Files imported before by this Runtime and unchanged since
// are skipped, so the agent may call it whenever the folder changes. A
// missing folder holds no images. A bad tarball does not stop the others:
// their errors are joined.
func (r *Runtime) ImportDir(ctx context.Context, dir string) ([]Image, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read images folder: %w", err)
	}
	var (
		imported []Image
		errs     []error
	)
	for _, entry := range entries {
		name := entry.Name()
		if entry.IsDir() || !isImageTarball(name) {
			continue
		}
		file := filepath.Join(dir, name)
		info, err := entry.Info()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		stamp := importStamp{size: info.Size(), modTime: info.ModTime()}
		r.mu.Lock()
		seen := r.imported[file] == stamp
		r.mu.Unlock()
		if seen {
			continue
		}
		imgs, err := r.ImportFile(ctx, file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		imported = append(imported, imgs...)
		r.mu.Lock()
		r.imported[file] = stamp
		r.mu.Unlock()
	}
	return imported, errors.Join(errs...)
}

func isImageTarball(name string) bool {
	return !strings.HasPrefix(name, ".") &&
		(strings.HasSuffix(name, ".tar") || strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".tgz"))
}

// ImportFile imports the images of one tarball and unpacks them.
func (r *Runtime) ImportFile(ctx context.Context, file string) ([]Image, error) {
	ctx = r.withNamespace(ctx)
	start := time.Now()
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	var stream io.Reader = f
	if !strings.HasSuffix(file, ".tar") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", file, err)
		}
		defer gz.Close()
		stream = gz
	}

	stored, err := r.client.Import(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	var imported []Image
	for _, meta := range stored {
		if meta.Labels == nil {
			meta.Labels = map[string]string{}
		}
		meta.Labels[labelImportedFrom] = filepath.Base(file)
		meta, err = r.client.ImageService().Update(ctx, meta, "labels."+labelImportedFrom)
		if err != nil {
			return nil, fmt.Errorf("import %s: label %s: %w", file, meta.Name, err)
		}
		img, err := r.unpacked(ctx, containerd.NewImage(r.client, meta))
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", file, err)
		}
		imported = append(imported, img)
	}
	r.log.Info("imported images", "file", file, "images", imageNames(imported), "took", time.Since(start).Round(time.Millisecond))
	return imported, nil
}

func imageNames(imgs []Image) []string {
	names := make([]string, len(imgs))
	for i, img := range imgs {
		names[i] = img.Name
	}
	return names
}
