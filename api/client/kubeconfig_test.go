package client

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKubeconfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kube", "config")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// An existing, world-readable file must end up 0600 too.
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	cfg := &Config{Server: "https://10.0.0.1:6443", Token: "abc.def", CAData: ca, Namespace: "kube-system"}
	if err := WriteKubeconfig(path, cfg, "kubelite", "admin"); err != nil {
		t.Fatalf("WriteKubeconfig: %v", err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("mode = %o, want 600", mode)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the kubeconfig (no temporary files)", len(entries))
	}

	text, _ := os.ReadFile(path)
	for _, want := range []string{
		"apiVersion: v1\n",
		"kind: Config\n",
		"current-context: kubelite\n",
		"server: https://10.0.0.1:6443\n",
		"certificate-authority-data: " + base64.StdEncoding.EncodeToString(ca) + "\n",
		"token: abc.def\n",
		"namespace: kube-system\n",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("kubeconfig lacks %q:\n%s", want, text)
		}
	}

	loaded, err := LoadKubeconfig(path, "")
	if err != nil {
		t.Fatalf("LoadKubeconfig: %v", err)
	}
	if loaded.Server != cfg.Server || loaded.Token != cfg.Token || !bytes.Equal(loaded.CAData, ca) ||
		loaded.Namespace != cfg.Namespace || loaded.Insecure {
		t.Errorf("loaded %+v, want %+v", loaded, cfg)
	}
}

// A kubeconfig as kubectl users write it: several contexts, file references
// relative to the kubeconfig's directory.
const handWrittenKubeconfig = `apiVersion: v1
kind: Config
current-context: lab
preferences: {}
clusters:
- name: lab
  cluster:
    server: https://192.168.56.10:6443
    certificate-authority: pki/ca.crt
- name: dev
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
users:
- name: lab-admin
  user:
    tokenFile: secrets/token
- name: dev-admin
  user:
    token: dev-token
    client-certificate-data: aWdub3JlZA==
contexts:
- name: lab
  context:
    cluster: lab
    user: lab-admin
- name: dev
  context:
    cluster: dev
    user: dev-admin
    namespace: kube-public
- name: broken
  context:
    cluster: nowhere
    user: dev-admin
`

func TestLoadKubeconfigContextsAndFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	mustWrite(t, path, handWrittenKubeconfig)
	mustWrite(t, filepath.Join(dir, "pki", "ca.crt"), "PEM DATA")
	mustWrite(t, filepath.Join(dir, "secrets", "token"), "lab-token\n")

	lab, err := LoadKubeconfig(path, "")
	if err != nil {
		t.Fatalf("current context: %v", err)
	}
	if lab.Server != "https://192.168.56.10:6443" || string(lab.CAData) != "PEM DATA" || lab.Token != "lab-token" || lab.Namespace != "" {
		t.Errorf("current context loaded as %+v", lab)
	}

	dev, err := LoadKubeconfig(path, "dev")
	if err != nil {
		t.Fatalf("context dev: %v", err)
	}
	if dev.Server != "https://127.0.0.1:6443" || !dev.Insecure || dev.Token != "dev-token" || dev.Namespace != "kube-public" {
		t.Errorf("context dev loaded as %+v", dev)
	}

	for _, ctxName := range []string{"missing", "broken"} {
		if _, err := LoadKubeconfig(path, ctxName); err == nil {
			t.Errorf("context %s: loaded, want an error", ctxName)
		}
	}
	if _, err := LoadKubeconfig(filepath.Join(dir, "absent"), ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: got %v, want a not-exist error", err)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestWriteKubeconfigInsecure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	cfg := &Config{Server: "https://127.0.0.1:6443", CAData: []byte("ignored"), Insecure: true}
	if err := WriteKubeconfig(path, cfg, "lab", "admin"); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadKubeconfig(path, "lab")
	if err != nil {
		t.Fatal(err)
	}
	// kubectl rejects a cluster with both; insecure wins.
	if !loaded.Insecure || len(loaded.CAData) != 0 || loaded.Token != "" {
		t.Errorf("loaded %+v", loaded)
	}
}
