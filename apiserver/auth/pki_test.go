package auth

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testHosts are what the server passes: its node address plus the names of
// the kubernetes Service.
func testHosts() []string {
	return append([]string{"192.0.2.10", "node-a"}, ClusterSANs(net.ParseIP("10.96.0.1"), "cluster.local")...)
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCertPEM(t, data)
}

func parseCertPEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("no CERTIFICATE block in %q", data)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestEnsurePKICreatesCAAndServingCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := EnsurePKI(dir, testHosts())
	if err != nil {
		t.Fatal(err)
	}

	ca := readCert(t, filepath.Join(dir, caCertFile))
	if !ca.IsCA || ca.Subject.CommonName != "kubelite-ca" {
		t.Errorf("CA: IsCA=%v CN=%q, want a CA named kubelite-ca", ca.IsCA, ca.Subject.CommonName)
	}
	if got := ca.NotAfter.Sub(ca.NotBefore); got < caValidity {
		t.Errorf("CA valid for %v, want at least %v", got, caValidity)
	}
	if !bytes.Equal(p.CACertPEM, mustReadFile(t, filepath.Join(dir, caCertFile))) {
		t.Error("CACertPEM differs from ca.crt")
	}

	serving := readCert(t, filepath.Join(dir, servingCertFile))
	if err := serving.CheckSignatureFrom(ca); err != nil {
		t.Errorf("serving certificate not signed by the CA: %v", err)
	}
	wantNames := []string{"node-a", "localhost", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	for _, name := range wantNames {
		if err := serving.VerifyHostname(name); err != nil {
			t.Errorf("serving certificate: %v", err)
		}
	}
	for _, ip := range []string{"192.0.2.10", "10.96.0.1", "127.0.0.1", "::1"} {
		if err := serving.VerifyHostname(ip); err != nil {
			t.Errorf("serving certificate: %v", err)
		}
	}
	if got := serving.NotAfter.Sub(serving.NotBefore); got < leafValidity || got > leafValidity+time.Hour {
		t.Errorf("serving certificate valid for %v, want about %v", got, leafValidity)
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestEnsurePKIFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := EnsurePKI(dir, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700},
		{filepath.Join(dir, caKeyFile), 0o600},
		{filepath.Join(dir, servingKeyFile), 0o600},
		{filepath.Join(dir, caCertFile), 0o644},
		{filepath.Join(dir, servingCertFile), 0o644},
	}
	for _, tt := range tests {
		info, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != tt.want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(tt.path), got, tt.want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(tests)-1 {
		t.Errorf("pki directory holds %d entries, want %d (no temporary files left)", len(entries), len(tests)-1)
	}
}

// TestEnsurePKIReuse starts the server again under different conditions and
// checks whether the serving certificate was re-issued; the CA never changes.
func TestEnsurePKIReuse(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		hosts       []string
		at          time.Time
		wantReissue bool
	}{
		{name: "same hosts", hosts: testHosts(), at: start.Add(time.Hour)},
		{name: "fewer hosts", hosts: []string{"192.0.2.10"}, at: start.Add(time.Hour)},
		{name: "host names in another case", hosts: []string{"NODE-A", "Kubernetes.Default"}, at: start.Add(time.Hour)},
		{name: "new node address", hosts: append(testHosts(), "192.0.2.11"), at: start.Add(time.Hour), wantReissue: true},
		{name: "new DNS name", hosts: append(testHosts(), "api.example.test"), at: start.Add(time.Hour), wantReissue: true},
		{name: "60 days before expiry", hosts: testHosts(), at: start.Add(leafValidity - 60*24*time.Hour)},
		{name: "20 days before expiry", hosts: testHosts(), at: start.Add(leafValidity - 20*24*time.Hour), wantReissue: true},
		{name: "expired", hosts: testHosts(), at: start.Add(leafValidity + time.Hour), wantReissue: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			first, err := ensurePKI(dir, testHosts(), start)
			if err != nil {
				t.Fatal(err)
			}
			firstServing := readCert(t, filepath.Join(dir, servingCertFile))

			second, err := ensurePKI(dir, tt.hosts, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first.CACertPEM, second.CACertPEM) {
				t.Error("the CA was replaced")
			}
			secondServing := readCert(t, filepath.Join(dir, servingCertFile))
			reissued := secondServing.SerialNumber.Cmp(firstServing.SerialNumber) != 0
			if reissued != tt.wantReissue {
				t.Fatalf("serving certificate re-issued: %v, want %v", reissued, tt.wantReissue)
			}
			if err := secondServing.CheckSignatureFrom(parseCertPEM(t, first.CACertPEM)); err != nil {
				t.Errorf("serving certificate not signed by the original CA: %v", err)
			}
			for _, host := range tt.hosts {
				if err := secondServing.VerifyHostname(host); err != nil {
					t.Errorf("serving certificate: %v", err)
				}
			}
			served := second.ServingTLSConfig().Certificates[0].Leaf
			if !served.Equal(secondServing) {
				t.Error("ServingTLSConfig does not serve the certificate on disk")
			}
		})
	}
}

func TestEnsurePKIRepairsServingCert(t *testing.T) {
	tests := []struct {
		name   string
		damage func(dir string) error
	}{
		{"certificate missing", func(dir string) error { return os.Remove(filepath.Join(dir, servingCertFile)) }},
		{"key missing", func(dir string) error { return os.Remove(filepath.Join(dir, servingKeyFile)) }},
		{"certificate garbled", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, servingCertFile), []byte("garbage"), 0o644)
		}},
		{"key of another certificate", func(dir string) error {
			other, err := EnsurePKI(filepath.Join(dir, "other"), nil)
			if err != nil {
				return err
			}
			_, key, err := other.IssueServingCert("x", []string{"127.0.0.1"})
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, servingKeyFile), key, 0o600)
		}},
		{"signed by another CA", func(dir string) error {
			other, err := EnsurePKI(filepath.Join(dir, "other"), nil)
			if err != nil {
				return err
			}
			cert, key, err := other.IssueServingCert("x", []string{"127.0.0.1", "::1", "localhost"})
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, servingCertFile), cert, 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, servingKeyFile), key, 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			first, err := EnsurePKI(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.damage(dir); err != nil {
				t.Fatal(err)
			}
			second, err := EnsurePKI(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first.CACertPEM, second.CACertPEM) {
				t.Error("the CA was replaced")
			}
			if _, err := tls.LoadX509KeyPair(filepath.Join(dir, servingCertFile), filepath.Join(dir, servingKeyFile)); err != nil {
				t.Errorf("serving key pair on disk: %v", err)
			}
			if err := readCert(t, filepath.Join(dir, servingCertFile)).CheckSignatureFrom(parseCertPEM(t, first.CACertPEM)); err != nil {
				t.Errorf("serving certificate not signed by the CA: %v", err)
			}
		})
	}
}

func TestEnsurePKIRefusesToReplaceCA(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(dir string) error
		wantErr string
	}{
		{"CA key missing", func(dir string) error { return os.Remove(filepath.Join(dir, caKeyFile)) }, "ca.key is missing"},
		{"CA key garbled", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, caKeyFile), []byte("garbage"), 0o600)
		}, "load CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := EnsurePKI(dir, nil); err != nil {
				t.Fatal(err)
			}
			caBefore := mustReadFile(t, filepath.Join(dir, caCertFile))
			if err := tt.damage(dir); err != nil {
				t.Fatal(err)
			}
			_, err := EnsurePKI(dir, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("EnsurePKI: %v, want an error containing %q", err, tt.wantErr)
			}
			if !bytes.Equal(caBefore, mustReadFile(t, filepath.Join(dir, caCertFile))) {
				t.Error("ca.crt was changed")
			}
		})
	}
}

func TestEnsurePKIRejectsEmptyHost(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := EnsurePKI(dir, []string{"192.0.2.10", " "}); err == nil {
		t.Fatal("EnsurePKI accepted an empty host name")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("bad input created %s (stat: %v)", dir, err)
	}
}

// TestServingTLSHandshake serves HTTPS on loopback with ServingTLSConfig and
// connects under each name a client may use, trusting only CertPool.
func TestServingTLSHandshake(t *testing.T) {
	p, err := EnsurePKI(t.TempDir(), testHosts())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = p.ServingTLSConfig()
	srv.StartTLS()
	defer srv.Close()

	tests := []struct {
		name       string
		serverName string // "" verifies the address dialled, 127.0.0.1
		roots      *x509.CertPool
		wantErr    bool
	}{
		{name: "loopback address", serverName: "", roots: p.CertPool()},
		{name: "service DNS name", serverName: "kubernetes.default.svc", roots: p.CertPool()},
		{name: "localhost", serverName: "localhost", roots: p.CertPool()},
		{name: "name not in certificate", serverName: "example.com", roots: p.CertPool(), wantErr: true},
		{name: "CA not trusted", serverName: "", roots: x509.NewCertPool(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs:    tt.roots,
				ServerName: tt.serverName,
			}}}
			defer client.CloseIdleConnections()
			resp, err := client.Get(srv.URL)
			if tt.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatal("handshake succeeded, want a verification error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.TLS.Version < tls.VersionTLS12 {
				t.Errorf("TLS version %x, want 1.2 or later", resp.TLS.Version)
			}
		})
	}
}

func TestServingTLSConfigRefusesOldTLS(t *testing.T) {
	p, err := EnsurePKI(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = p.ServingTLSConfig()
	srv.StartTLS()
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:    p.CertPool(),
		MinVersion: tls.VersionTLS10,
		MaxVersion: tls.VersionTLS11,
	}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	// The server, not the client, must be the one to refuse.
	if !strings.Contains(err.Error(), "remote error: tls: protocol version not supported") {
		t.Fatalf("TLS 1.1 handshake: %v, want the server to refuse the protocol version", err)
	}
}

// TestNodeAgentMutualTLS plays a node agent's HTTPS API: it serves a
// certificate from IssueServingCert and accepts only clients holding a
// certificate from IssueClientCert.
func TestNodeAgentMutualTLS(t *testing.T) {
	p, err := EnsurePKI(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	servingCert, servingKey, err := p.IssueServingCert("node-a", []string{"127.0.0.1", "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	serving, err := tls.X509KeyPair(servingCert, servingKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := r.TLS.PeerCertificates[0].Subject
		io.WriteString(w, peer.CommonName+" "+strings.Join(peer.Organization, ","))
	}))
	srv.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{serving},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.CertPool(),
	}
	srv.StartTLS()
	defer srv.Close()

	clientCert, clientKey, err := p.IssueClientCert("kubelite-apiserver", []string{GroupMasters})
	if err != nil {
		t.Fatal(err)
	}
	client, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	selfSigned, err := EnsurePKI(t.TempDir(), nil) // a stranger's CA
	if err != nil {
		t.Fatal(err)
	}
	strangerCert, strangerKey, err := selfSigned.IssueClientCert("mallory", nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := tls.X509KeyPair(strangerCert, strangerKey)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name         string
		certificates []tls.Certificate
		wantBody     string // "" when the handshake must fail
	}{
		{name: "API server's client certificate", certificates: []tls.Certificate{client}, wantBody: "kubelite-apiserver system:masters"},
		{name: "no client certificate", certificates: nil},
		{name: "certificate from another CA", certificates: []tls.Certificate{stranger}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs:      p.CertPool(),
				ServerName:   "node-a",
				Certificates: tt.certificates,
			}}}
			defer httpClient.CloseIdleConnections()
			resp, err := httpClient.Get(srv.URL)
			if tt.wantBody == "" {
				if err == nil {
					resp.Body.Close()
					t.Fatal("request succeeded, want the node agent to refuse the client")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tt.wantBody {
				t.Errorf("node agent saw %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestIssueRejectsBadInput(t *testing.T) {
	p, err := EnsurePKI(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		issue func() error
	}{
		{"serving without name", func() error { _, _, err := p.IssueServingCert("", []string{"node-a"}); return err }},
		{"serving without hosts", func() error { _, _, err := p.IssueServingCert("node-a", nil); return err }},
		{"serving with empty host", func() error { _, _, err := p.IssueServingCert("node-a", []string{""}); return err }},
		{"client without name", func() error { _, _, err := p.IssueClientCert("", nil); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.issue(); err == nil {
				t.Fatal("issued a certificate, want an error")
			}
		})
	}
}
