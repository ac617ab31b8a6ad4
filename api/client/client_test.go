package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client/internal/fakeapi"
)

const testToken = "s3cret-token"

// startFake starts the fake API server and stops it when the test ends.
func startFake(t *testing.T) *fakeapi.Server {
	t.Helper()
	fake := fakeapi.Start(testToken)
	t.Cleanup(fake.Close)
	return fake
}

// caPEM is the PEM form of the fake server's self-signed certificate.
func caPEM(fake *fakeapi.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fake.Certificate().Raw})
}

// newClient returns a client that trusts fake and sends the right token;
// adjust changes the config first.
func newClient(t *testing.T, fake *fakeapi.Server, adjust func(*Config)) *Client {
	t.Helper()
	cfg := &Config{Server: fake.URL, Token: testToken, CAData: caPEM(fake), UserAgent: "client-test/1.0"}
	if adjust != nil {
		adjust(cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newPod(ns, name string, labels map[string]string) *api.Pod {
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "web", Image: "httpd"}}},
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"nil":        nil,
		"no server":  {},
		"bad scheme": {Server: "ftp://127.0.0.1"},
		"no host":    {Server: "https://"},
		"bad CA":     {Server: "https://127.0.0.1:6443", CAData: []byte("not a certificate")},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	fake := startFake(t)
	ctx := testContext(t)
	pods := For[api.Pod](newClient(t, fake, nil), "default")

	_, err := pods.Get(ctx, "missing")
	var status *api.Status
	if !errors.As(err, &status) {
		t.Fatalf("Get missing: error %v (%T) is not a *api.Status", err, err)
	}
	if status.Code != http.StatusNotFound || !api.IsNotFound(err) || status.Message != `pods "missing" not found` {
		t.Errorf("Get missing: got %+v", status)
	}

	if _, err := pods.Create(ctx, newPod("default", "web", nil)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := pods.Create(ctx, newPod("default", "web", nil)); !api.IsAlreadyExists(err) {
		t.Errorf("second Create: got %v, want AlreadyExists", err)
	}

	// A body that is not a Status (a mux's plain-text 404) still yields one.
	_, err = newClient(t, fake, nil).Do(ctx, http.MethodGet, "/no/such/path", nil, nil)
	if !errors.As(err, &status) || status.Code != http.StatusNotFound || !api.IsNotFound(err) {
		t.Errorf("unknown path: got %v (%+v), want a synthesised 404 Status", err, status)
	}

	fake.FailRequests(1)
	_, err = pods.Get(ctx, "web")
	if !errors.As(err, &status) || status.Code != http.StatusInternalServerError || status.Reason != api.ReasonInternalError {
		t.Errorf("injected failure: got %v, want a 500 InternalError Status", err)
	}
}

func TestDecodeStatusFillsGaps(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		code       int
		wantCode   int32
		wantReason api.StatusReason
		wantMsg    string
	}{
		{"full status", `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"boom","reason":"Conflict","code":409}`, 409, 409, api.ReasonConflict, "boom"},
		{"status without reason or code", `{"kind":"Status","status":"Failure","message":"old"}`, 410, 410, api.ReasonGone, "old"},
		{"empty body", ``, 403, 403, api.ReasonForbidden, "the server does not allow access to the requested resource"},
		{"html", `<html>bad gateway</html>`, 502, 502, api.ReasonInternalError, `an error on the server ("<html>bad gateway</html>") has prevented the request from succeeding`},
		{"unknown code", `nope`, 418, 418, "", "the server responded with the status code 418 but did not return more information"},
	}
	for _, tt := range tests {
		got := decodeStatus([]byte(tt.body), tt.code)
		if got.Code != tt.wantCode || got.Reason != tt.wantReason || got.Message != tt.wantMsg {
			t.Errorf("%s: got code %d reason %q message %q", tt.name, got.Code, got.Reason, got.Message)
		}
	}
}

func TestParseWarnings(t *testing.T) {
	tests := []struct {
		header string
		want   []string
	}{
		{`299 - "apps/v1beta1 Deployment is deprecated"`, []string{"apps/v1beta1 Deployment is deprecated"}},
		{`299 - "say \"hi\"" "Sat, 01 Jan 2000 00:00:00 GMT"`, []string{`say "hi"`}},
		{`299 - "one", 299 - "two"`, []string{"one", "two"}},
		{`199 agent "not persistent"`, nil},
		{`garbage`, []string{"garbage"}},
	}
	for _, tt := range tests {
		if got := parseWarnings(tt.header); !slices.Equal(got, tt.want) {
			t.Errorf("parseWarnings(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestWarningsDelivered(t *testing.T) {
	fake := startFake(t)
	fake.SetWarnings("apps/v1beta1 Deployment is deprecated", `field "port" is unknown`)
	var mu sync.Mutex
	var got []string
	c := newClient(t, fake, func(cfg *Config) {
		cfg.OnWarning = func(msg string) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, msg)
		}
	})
	if _, err := For[api.Pod](c, "default").List(testContext(t), ListOptions{}); err != nil {
		t.Fatalf("List: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"apps/v1beta1 Deployment is deprecated", `field "port" is unknown`}
	if !slices.Equal(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
}

func TestTokenAndUserAgentSent(t *testing.T) {
	fake := startFake(t)
	ctx := testContext(t)
	if _, err := For[api.Pod](newClient(t, fake, nil), "").List(ctx, ListOptions{}); err != nil {
		t.Fatalf("List: %v", err)
	}
	last := fake.Requests()[len(fake.Requests())-1]
	if got := last.Header.Get("Authorization"); got != "Bearer "+testToken {
		t.Errorf("Authorization = %q", got)
	}
	if got := last.Header.Get("User-Agent"); got != "client-test/1.0" {
		t.Errorf("User-Agent = %q", got)
	}

	wrong := newClient(t, fake, func(cfg *Config) { cfg.Token = "wrong" })
	_, err := For[api.Pod](wrong, "").List(ctx, ListOptions{})
	if api.ReasonOf(err) != api.ReasonUnauthorized {
		t.Errorf("wrong token: got %v, want Unauthorized", err)
	}
}

// otherCA returns a PEM CA certificate that did not sign the fake's certificate.
func otherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "some other CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestTLSVerification(t *testing.T) {
	fake := startFake(t)
	ctx := testContext(t)
	list := func(c *Client) error {
		_, err := For[api.Pod](c, "").List(ctx, ListOptions{})
		return err
	}

	if err := list(newClient(t, fake, nil)); err != nil {
		t.Errorf("with the right CA: %v", err)
	}
	var verifyErr *tls.CertificateVerificationError
	if err := list(newClient(t, fake, func(cfg *Config) { cfg.CAData = otherCA(t) })); !errors.As(err, &verifyErr) {
		t.Errorf("with a wrong CA: got %v, want a certificate verification error", err)
	}
	if err := list(newClient(t, fake, func(cfg *Config) { cfg.CAData = nil })); !errors.As(err, &verifyErr) {
		t.Errorf("with the system roots: got %v, want a certificate verification error", err)
	}
	if err := list(newClient(t, fake, func(cfg *Config) { cfg.CAData, cfg.Insecure = nil, true })); err != nil {
		t.Errorf("insecure: %v", err)
	}
}

func TestTypedCRUD(t *testing.T) {
	fake := startFake(t)
	ctx := testContext(t)
	c := newClient(t, fake, nil)
	pods := For[api.Pod](c, "default")

	created, err := pods.Create(ctx, newPod("", "web-1", map[string]string{"run": "httpd"}))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.ResourceVersion == "" || created.Namespace != "default" {
		t.Errorf("Create returned %+v", created.ObjectMeta)
	}
	sent := fake.Requests()[len(fake.Requests())-1]
	if sent.Path != "/api/v1/namespaces/default/pods" || !jsonHas(sent.Body, `"apiVersion":"v1"`, `"kind":"Pod"`) {
		t.Errorf("Create sent %s %s", sent.Path, sent.Body)
	}
	if _, err := pods.Create(ctx, newPod("", "other", nil)); err != nil {
		t.Fatalf("Create: %v", err)
	}

	got, err := pods.Get(ctx, "web-1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Spec.Containers[0].Image != "httpd" || got.Kind != "Pod" || got.APIVersion != "v1" {
		t.Errorf("Get returned %+v", got)
	}

	list, err := pods.List(ctx, ListOptions{LabelSelector: "run=httpd"})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "web-1" || list.ResourceVersion != fake.ResourceVersion() {
		t.Errorf("List returned %d items at %q", len(list.Items), list.ResourceVersion)
	}
	if list.Items[0].Kind != "Pod" {
		t.Errorf("list items lack their kind: %+v", list.Items[0].TypeMeta)
	}

	update := api.DeepCopy(got)
	update.Labels["tier"] = "web"
	updated, err := pods.Update(ctx, update)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if updated.Labels["tier"] != "web" || updated.ResourceVersion == got.ResourceVersion {
		t.Errorf("Update returned %+v", updated.ObjectMeta)
	}
	if _, err := pods.Update(ctx, got); !api.IsConflict(err) { // got's resourceVersion is stale now
		t.Errorf("stale Update: got %v, want Conflict", err)
	}

	statusUpdate := api.DeepCopy(updated)
	statusUpdate.Status.Phase = "Running"
	statusUpdate.Labels["ignored"] = "by the status subresource"
	afterStatus, err := pods.UpdateStatus(ctx, statusUpdate)
	if err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	if afterStatus.Status.Phase != "Running" || afterStatus.Labels["ignored"] != "" {
		t.Errorf("UpdateStatus returned %+v", afterStatus)
	}
	if last := fake.Requests()[len(fake.Requests())-1]; last.Path != "/api/v1/namespaces/default/pods/web-1/status" || last.Method != http.MethodPut {
		t.Errorf("UpdateStatus sent %s %s", last.Method, last.Path)
	}

	err = pods.Delete(ctx, "web-1", DeleteOptions{ResourceVersion: got.ResourceVersion})
	if !api.IsConflict(err) {
		t.Errorf("Delete with a stale precondition: got %v, want Conflict", err)
	}
	grace := int64(0)
	opts := DeleteOptions{GracePeriodSeconds: &grace, PropagationPolicy: "Orphan", ResourceVersion: afterStatus.ResourceVersion}
	if err := pods.Delete(ctx, "web-1", opts); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	last := fake.Requests()[len(fake.Requests())-1]
	want := `{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0,"propagationPolicy":"Orphan","preconditions":{"resourceVersion":"` + afterStatus.ResourceVersion + `"}}`
	if !sameJSON(t, last.Body, []byte(want)) {
		t.Errorf("Delete body = %s\nwant %s", last.Body, want)
	}
	if _, err := pods.Get(ctx, "web-1"); !api.IsNotFound(err) {
		t.Errorf("Get after Delete: got %v, want NotFound", err)
	}
}

func TestTypedAllNamespacesUsesObjectNamespace(t *testing.T) {
	fake := startFake(t)
	ctx := testContext(t)
	pods := For[api.Pod](newClient(t, fake, nil), "")
	if _, err := pods.Create(ctx, newPod("kube-system", "dns", nil)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if last := fake.Requests()[len(fake.Requests())-1]; last.Path != "/api/v1/namespaces/kube-system/pods" {
		t.Errorf("Create posted to %s", last.Path)
	}
	nodes := For[api.Node](newClient(t, fake, nil), "ignored for cluster-scoped kinds")
	if _, err := nodes.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}}); err != nil {
		t.Fatalf("Create node: %v", err)
	}
	if last := fake.Requests()[len(fake.Requests())-1]; last.Path != "/api/v1/nodes" {
		t.Errorf("Create node posted to %s", last.Path)
	}
}

func TestDynamicLegacyCreateAndFieldValidation(t *testing.T) {
	fake := startFake(t)
	ctx := testContext(t)
	c := newClient(t, fake, nil)
	deployments, _, _ := api.NewScheme().ByKind("apps/v1", "Deployment")
	body := []byte(`{"apiVersion":"apps/v1beta1","kind":"Deployment","metadata":{"name":"httpd"}}`)
	if _, err := c.Resource(deployments, "default").Create(ctx, "apps/v1beta1", body, WriteOptions{FieldValidation: "Strict"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	last := fake.Requests()[len(fake.Requests())-1]
	if last.Path != "/apis/apps/v1beta1/namespaces/default/deployments" || last.Query["fieldValidation"][0] != "Strict" {
		t.Errorf("Create sent %s %v", last.Path, last.Query)
	}
	if _, err := c.Resource(deployments, "default").Get(ctx, "httpd"); !api.IsNotFound(err) {
		// The fake keeps each apiVersion apart; the stored version has no such object.
		t.Errorf("Get in apps/v1: got %v, want NotFound", err)
	}
}

func jsonHas(body []byte, fragments ...string) bool {
	for _, f := range fragments {
		if !bytes.Contains(body, []byte(f)) {
			return false
		}
	}
	return true
}

// sameJSON reports whether two JSON documents hold the same values.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decoding %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}
