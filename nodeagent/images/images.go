// Package images builds kubelite's own offline container images — busybox
// and httpd — from Debian's busybox-static, without docker and without a
// network.
//
// Each image is written as an OCI image-layout tarball (oci-layout,
// index.json, blobs/sha256/...) that also carries a docker-archive
// manifest.json, so `ctr images import`, the containerd client's Import and
// `docker load` all accept it. The index names the image with containerd's
// io.containerd.image.name annotation (docker.io/library/httpd:latest), so
// an import needs no extra flags.
//
// Builds are deterministic: every file has the same fixed mtime and owner,
// entries are sorted, layers are stored uncompressed (so no compressor
// version can change a digest), and JSON is marshalled from structs. The
// same busybox binary therefore always gives the same digests.
package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultBusybox is where Debian's busybox-static package installs its binary.
const DefaultBusybox = "/bin/busybox"

// Epoch is the fixed timestamp of every file and of the image "created" field.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// HTTPDDocRoot is the document root of the httpd image: Apache's, so that
// the tutorial's paths look familiar.
const HTTPDDocRoot = "/usr/local/apache2/htdocs"

// ItWorks is Apache httpd's default index.html, which the tutorial's curl shows.
const ItWorks = "<html><body><h1>It works!</h1></body></html>\n"

// annotationImageName is containerd's index annotation for a full image name
// (images.AnnotationImageName; repeated here to keep this package free of
// the containerd module).
const annotationImageName = "io.containerd.image.name"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// File is one entry of an image's root filesystem.
type File struct {
	Path     string      // inside the image, without a leading slash: "etc/passwd"
	Mode     os.FileMode // permission bits plus os.ModeDir or os.ModeSymlink
	Content  []byte      // for regular files
	Linkname string      // for symlinks
}

// Image is what one built image holds: its full name, its process
// configuration and its files, all in a single layer.
type Image struct {
	Name   string // full reference, e.g. docker.io/library/busybox:latest
	Config ocispec.ImageConfig
	Files  []File
}

// FileName is the tarball name an image is written to: busybox.tar for
// docker.io/library/busybox:latest.
func (img Image) FileName() string {
	repo := img.Name
	if i := strings.LastIndexAny(repo, ":@"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return path.Base(repo) + ".tar"
}

// Busybox describes docker.io/library/busybox:latest: busybox, a symlink
// for each applet, /etc/passwd, /etc/group and /tmp. Its command is `sh`.
func Busybox(busyboxPath string) (Image, error) {
	base, err := baseFiles(busyboxPath)
	if err != nil {
		return Image{}, err
	}
	return Image{
		Name: "docker.io/library/busybox:latest",
		Config: ocispec.ImageConfig{
			Env:        []string{defaultPath},
			Cmd:        []string{"sh"},
			WorkingDir: "/",
		},
		Files: base,
	}, nil
}

// HTTPD describes docker.io/library/httpd:latest: the busybox base plus
// Apache's "It works!" page, served on port 80 by busybox httpd in the
// foreground (-f), logging every request (-vv) to stderr.
func HTTPD(busyboxPath string) (Image, error) {
	base, err := baseFiles(busyboxPath)
	if err != nil {
		return Image{}, err
	}
	files := append(base,
		File{Path: "usr/local", Mode: os.ModeDir | 0o755},
		File{Path: "usr/local/apache2", Mode: os.ModeDir | 0o755},
		File{Path: strings.TrimPrefix(HTTPDDocRoot, "/"), Mode: os.ModeDir | 0o755},
		File{Path: strings.TrimPrefix(HTTPDDocRoot, "/") + "/index.html", Mode: 0o644, Content: []byte(ItWorks)},
	)
	return Image{
		Name: "docker.io/library/httpd:latest",
		Config: ocispec.ImageConfig{
			Env:          []string{defaultPath},
			Cmd:          []string{"httpd", "-f", "-vv", "-p", "80", "-h", HTTPDDocRoot},
			WorkingDir:   "/",
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
		},
		Files: files,
	}, nil
}

// BuildAll writes busybox.tar and httpd.tar into outDir and returns their paths.
func BuildAll(outDir, busyboxPath string) ([]string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", outDir, err)
	}
	var written []string
	for _, describe := range []func(string) (Image, error){Busybox, HTTPD} {
		img, err := describe(busyboxPath)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(outDir, img.FileName())
		if err := WriteFile(file, img); err != nil {
			return nil, err
		}
		written = append(written, file)
	}
	return written, nil
}

// WriteFile writes img as a tarball to file, atomically (through a
// temporary file and a rename), so that a node agent watching the folder
// never imports half a file.
func WriteFile(file string, img Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".building-*")
	if err != nil {
		return fmt.Errorf("write image %s: %w", img.Name, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := Write(tmp, img); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write image %s: %w", img.Name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write image %s: %w", img.Name, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("write image %s: %w", img.Name, err)
	}
	return nil
}

// Write writes img to w as an OCI image-layout tarball that also holds a
// docker-archive manifest.json.
func Write(w io.Writer, img Image) error {
	layer, err := layerTar(img.Files)
	if err != nil {
		return fmt.Errorf("image %s: layer: %w", img.Name, err)
	}
	layerDigest := digest.FromBytes(layer)

	created := Epoch
	config, err := json.Marshal(ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: goruntime.GOARCH, OS: "linux"},
		Config:   img.Config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layerDigest}},
		History:  []ocispec.History{{Created: &created, CreatedBy: "kubelite nodeagent/images from busybox-static"}},
	})
	if err != nil {
		return fmt.Errorf("image %s: config: %w", img.Name, err)
	}
	configDesc := descriptor(ocispec.MediaTypeImageConfig, config)

	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{descriptor(ocispec.MediaTypeImageLayer, layer)},
	})
	if err != nil {
		return fmt.Errorf("image %s: manifest: %w", img.Name, err)
	}
	manifestDesc := descriptor(ocispec.MediaTypeImageManifest, manifest)
	manifestDesc.Platform = &ocispec.Platform{Architecture: goruntime.GOARCH, OS: "linux"}
	manifestDesc.Annotations = map[string]string{
		annotationImageName:       img.Name,
		ocispec.AnnotationRefName: tagOf(img.Name),
	}

	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{manifestDesc},
	})
	if err != nil {
		return fmt.Errorf("image %s: index: %w", img.Name, err)
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("image %s: layout: %w", img.Name, err)
	}
	// docker-archive's manifest, read by `docker load` (OCI-aware importers
	// such as containerd prefer index.json when both are present).
	dockerManifest, err := json.Marshal([]dockerArchiveManifest{{
		Config:   blobPath(configDesc.Digest),
		RepoTags: []string{dockerRepoTag(img.Name)},
		Layers:   []string{blobPath(layerDigest)},
	}})
	if err != nil {
		return fmt.Errorf("image %s: docker manifest: %w", img.Name, err)
	}

	tw := tar.NewWriter(w)
	entries := []File{
		{Path: ocispec.ImageLayoutFile, Mode: 0o644, Content: layout},
		{Path: "index.json", Mode: 0o644, Content: index},
		{Path: "manifest.json", Mode: 0o644, Content: dockerManifest},
		{Path: "blobs", Mode: os.ModeDir | 0o755},
		{Path: "blobs/sha256", Mode: os.ModeDir | 0o755},
	}
	blobs := [][]byte{config, manifest, layer}
	sort.Slice(blobs, func(i, j int) bool { return digest.FromBytes(blobs[i]) < digest.FromBytes(blobs[j]) })
	for _, blob := range blobs {
		entries = append(entries, File{Path: blobPath(digest.FromBytes(blob)), Mode: 0o644, Content: blob})
	}
	for _, entry := range entries {
		if err := writeEntry(tw, entry); err != nil {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image %s: %w", img.Name, err)
	}
	return nil
}

type dockerArchiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// baseFiles is the root filesystem both images share.
func baseFiles(busyboxPath string) ([]File, error) {
	binary, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox (install Debian's busybox-static): %w", err)
	}
	applets, err := appletPaths(busyboxPath)
	if err != nil {
		return nil, err
	}
	files := []File{
		{Path: "bin/busybox", Mode: 0o755, Content: binary},
		{Path: "etc/passwd", Mode: 0o644, Content: []byte(
			"root:x:0:0:root:/root:/bin/sh\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Content: []byte(
			"root:x:0:\n" +
				"nogroup:x:65534:\n")},
		{Path: "tmp", Mode: os.ModeDir | os.ModeSticky | 0o777},
		{Path: "root", Mode: os.ModeDir | 0o700},
	}
	for _, dir := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "var", "var/run"} {
		files = append(files, File{Path: dir, Mode: os.ModeDir | 0o755})
	}
	for _, applet := range applets {
		if applet == "bin/busybox" {
			continue
		}
		files = append(files, File{Path: applet, Mode: os.ModeSymlink | 0o777, Linkname: "/bin/busybox"})
	}
	return files, nil
}

// appletPaths asks busybox where each of its applets belongs ("bin/sh",
// "usr/bin/wget", ...), sorted.
func appletPaths(busyboxPath string) ([]string, error) {
	out, err := exec.Command(busyboxPath, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", busyboxPath, err)
	}
	var paths []string
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			paths = append(paths, path.Clean(strings.TrimPrefix(line, "/")))
		}
	}
	if len(paths) == 0 {
		return nil, errors.New(busyboxPath + " --list-full listed no applets")
	}
	sort.Strings(paths)
	return paths, nil
}

// layerTar is the uncompressed layer tarball of files, sorted by path so
// the same files always give the same bytes.
func layerTar(files []File) ([]byte, error) {
	sorted := append([]File(nil), files...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, f := range sorted {
		if i > 0 && f.Path == sorted[i-1].Path {
			return nil, fmt.Errorf("%s listed twice", f.Path)
		}
		if err := writeEntry(tw, f); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeEntry(tw *tar.Writer, f File) error {
	hdr := &tar.Header{
		Name:    f.Path,
		Mode:    int64(f.Mode.Perm()),
		ModTime: Epoch,
		Uname:   "root",
		Gname:   "root",
	}
	if f.Mode&os.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	switch {
	case f.Mode.IsDir():
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case f.Mode&os.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = f.Linkname
	default:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = int64(len(f.Content))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", f.Path, err)
	}
	if hdr.Typeflag == tar.TypeReg {
		if _, err := tw.Write(f.Content); err != nil {
			return fmt.Errorf("tar %s: %w", f.Path, err)
		}
	}
	return nil
}

func descriptor(mediaType string, blob []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
}

func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// tagOf is the tag of a full reference: "latest" for docker.io/library/httpd:latest.
func tagOf(name string) string {
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[i+1:]
	}
	return "latest"
}

// dockerRepoTag is the short form docker save writes: "httpd:latest" for
// docker.io/library/httpd:latest.
func dockerRepoTag(name string) string {
	return strings.TrimPrefix(strings.TrimPrefix(name, "docker.io/"), "library/")
}

// Digest returns the sha256 of a file, e.g. to compare two builds.
func Digest(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
