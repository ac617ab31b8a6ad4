package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// requireBusybox fails (never skips) when busybox-static is missing: CI
// must install it.
func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(DefaultBusybox); err != nil {
		t.Fatalf("%s is missing: install Debian's busybox-static (scripts/install-deps.sh): %v", DefaultBusybox, err)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	requireBusybox(t)
	first, err := BuildAll(t.TempDir(), DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	second, err := BuildAll(t.TempDir(), DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		a, _ := Digest(first[i])
		b, _ := Digest(second[i])
		if a != b {
			t.Errorf("%s: two builds differ: %s and %s", filepath.Base(first[i]), a, b)
		}
	}
	if got := []string{filepath.Base(first[0]), filepath.Base(first[1])}; !slices.Equal(got, []string{"busybox.tar", "httpd.tar"}) {
		t.Errorf("files = %q", got)
	}
}

// ociLayout is a tarball read back: file name → content.
type ociLayout map[string][]byte

func readTarball(t *testing.T, r io.Reader) ociLayout {
	t.Helper()
	files := ociLayout{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		files[hdr.Name] = body
	}
}

func (l ociLayout) blob(t *testing.T, d digest.Digest) []byte {
	t.Helper()
	body, ok := l["blobs/sha256/"+d.Encoded()]
	if !ok {
		t.Fatalf("blob %s missing", d)
	}
	if digest.FromBytes(body) != d {
		t.Fatalf("blob %s has the wrong digest", d)
	}
	return body
}

func TestHTTPDImageLayout(t *testing.T) {
	requireBusybox(t)
	img, err := HTTPD(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, img); err != nil {
		t.Fatal(err)
	}
	layout := readTarball(t, &buf)

	if string(layout["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", layout["oci-layout"])
	}
	var index ocispec.Index
	if err := json.Unmarshal(layout["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index has %d manifests", len(index.Manifests))
	}
	desc := index.Manifests[0]
	if got := desc.Annotations[annotationImageName]; got != "docker.io/library/httpd:latest" {
		t.Errorf("image name annotation = %q", got)
	}
	if got := desc.Annotations[ocispec.AnnotationRefName]; got != "latest" {
		t.Errorf("ref name annotation = %q", got)
	}

	var manifest ocispec.Manifest
	if err := json.Unmarshal(layout.blob(t, desc.Digest), &manifest); err != nil {
		t.Fatal(err)
	}
	var config ocispec.Image
	if err := json.Unmarshal(layout.blob(t, manifest.Config.Digest), &config); err != nil {
		t.Fatal(err)
	}
	wantCmd := []string{"httpd", "-f", "-vv", "-p", "80", "-h", HTTPDDocRoot}
	if !slices.Equal(config.Config.Cmd, wantCmd) {
		t.Errorf("cmd = %q; want %q", config.Config.Cmd, wantCmd)
	}
	if _, ok := config.Config.ExposedPorts["80/tcp"]; !ok {
		t.Errorf("port 80/tcp not exposed: %v", config.Config.ExposedPorts)
	}
	if len(manifest.Layers) != 1 || config.RootFS.DiffIDs[0] != manifest.Layers[0].Digest {
		t.Fatalf("layers %v do not match diff IDs %v", manifest.Layers, config.RootFS.DiffIDs)
	}

	root := map[string]*tar.Header{}
	contents := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(layout.blob(t, manifest.Layers[0].Digest)))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		root[hdr.Name] = hdr
		body, _ := io.ReadAll(tr)
		contents[hdr.Name] = string(body)
		if !hdr.ModTime.Equal(Epoch) || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d; want fixed", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid)
		}
	}
	for _, applet := range []string{"bin/sh", "bin/ls", "bin/cat", "bin/ps", "usr/bin/wget", "usr/bin/nslookup", "usr/sbin/httpd"} {
		if hdr := root[applet]; hdr == nil || hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != "/bin/busybox" {
			t.Errorf("%s is not a symlink to /bin/busybox: %+v", applet, hdr)
		}
	}
	if hdr := root["bin/busybox"]; hdr == nil || hdr.Mode&0o111 == 0 {
		t.Errorf("bin/busybox missing or not executable")
	}
	if hdr := root["tmp/"]; hdr == nil || hdr.Mode != 0o1777 {
		t.Errorf("tmp/ is not a sticky, world-writable folder: %+v", hdr)
	}
	if got := contents["usr/local/apache2/htdocs/index.html"]; got != ItWorks {
		t.Errorf("index.html = %q", got)
	}
	if got := contents["etc/passwd"]; got == "" || got[:5] != "root:" {
		t.Errorf("etc/passwd = %q", got)
	}

	// The docker-archive manifest points at the same blobs.
	var docker []dockerArchiveManifest
	if err := json.Unmarshal(layout["manifest.json"], &docker); err != nil {
		t.Fatal(err)
	}
	if len(docker) != 1 || !slices.Equal(docker[0].RepoTags, []string{"httpd:latest"}) ||
		docker[0].Config != "blobs/sha256/"+manifest.Config.Digest.Encoded() {
		t.Errorf("manifest.json = %+v", docker)
	}
}

func TestFileName(t *testing.T) {
	for name, want := range map[string]string{
		"docker.io/library/httpd:latest": "httpd.tar",
		"localhost:5000/x/busybox:1.36":  "busybox.tar",
		"myreg:5000/app":                 "app.tar",
	} {
		if got := (Image{Name: name}).FileName(); got != want {
			t.Errorf("FileName(%s) = %s; want %s", name, got, want)
		}
	}
}
