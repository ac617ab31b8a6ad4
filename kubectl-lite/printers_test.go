package kubectl

import (
	"strings"
	"testing"
	"time"

	"kubelite/api"
)

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "<invalid>"},
		{-time.Second, "0s"},
		{0, "0s"},
		{5 * time.Second, "5s"},
		{119 * time.Second, "119s"},
		{2 * time.Minute, "2m"},
		{3*time.Minute + 12*time.Second, "3m12s"},
		{10 * time.Minute, "10m"},
		{179 * time.Minute, "179m"},
		{3 * time.Hour, "3h"},
		{4*time.Hour + 30*time.Minute, "4h30m"},
		{8 * time.Hour, "8h"},
		{47 * time.Hour, "47h"},
		{2*24*time.Hour + 3*time.Hour, "2d3h"},
		{3 * 24 * time.Hour, "3d"},
		{8 * 24 * time.Hour, "8d"},
		{400 * 24 * time.Hour, "400d"},
		{2*365*24*time.Hour + 24*time.Hour, "2y1d"},
		{9 * 365 * 24 * time.Hour, "9y"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestFormatEndpoints(t *testing.T) {
	tests := []struct {
		name string
		ep   *api.Endpoints
		want string
	}{
		{"no subsets", httpdEndpoints(), "<none>"},
		{"three", httpdEndpoints("10.244.1.2", "10.244.2.3", "10.244.3.4"), "10.244.1.2:80,10.244.2.3:80,10.244.3.4:80"},
		{"four", httpdEndpoints("10.244.1.2", "10.244.2.3", "10.244.3.4", "10.244.3.5"), "10.244.1.2:80,10.244.2.3:80,10.244.3.4:80 + 1 more..."},
	}
	for _, tt := range tests {
		if got := formatEndpoints(tt.ep, nil); got != tt.want {
			t.Errorf("%s: formatEndpoints = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestTablePrinters(t *testing.T) {
	scheme := api.NewScheme()
	resource := func(name string) *api.Resource {
		r, ok := scheme.ByName(name)
		if !ok {
			t.Fatalf("no resource %q", name)
		}
		return r
	}
	namespaces := []api.Object{
		&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default", CreationTimestamp: ago(3*24*time.Hour + 19*time.Hour)}, Status: api.NamespaceStatus{Phase: "Active"}},
		&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "old", CreationTimestamp: ago(3 * time.Hour)}, Status: api.NamespaceStatus{Phase: "Terminating"}},
	}
	events := httpdEvents()
	eventObjects := make([]api.Object, len(events))
	for i := range events {
		eventObjects[i] = &events[i]
	}
	holder := "node1"
	leases := []api.Object{&api.Lease{ObjectMeta: api.ObjectMeta{Name: "node1", Namespace: "kube-node-lease", CreationTimestamp: ago(time.Hour)},
		Spec: api.LeaseSpec{HolderIdentity: &holder}}}
	endpoints := []api.Object{
		httpdEndpoints("10.244.1.2", "10.244.2.3", "10.244.3.4", "10.244.3.5"),
		&api.Endpoints{ObjectMeta: api.ObjectMeta{Name: "empty", Namespace: "default", CreationTimestamp: ago(time.Minute)}},
	}
	allNamespaces := podFixtures()[:2]
	allNamespaces[1].GetObjectMeta().Namespace = "kube-public"

	tests := []struct {
		golden   string
		resource string
		objects  []api.Object
		opts     printOptions
	}{
		{"get/pods.txt", "pods", podFixtures(), printOptions{}},
		{"get/pods-wide.txt", "pods", podFixtures(), printOptions{wide: true}},
		{"get/pods-all-namespaces-labels.txt", "pods", allNamespaces, printOptions{withNamespace: true, showLabels: true}},
		{"get/pods-no-headers.txt", "pods", podFixtures()[:2], printOptions{noHeaders: true}},
		{"get/services.txt", "svc", serviceFixtures(), printOptions{}},
		{"get/services-wide.txt", "svc", serviceFixtures(), printOptions{wide: true}},
		{"get/deployments.txt", "deploy", []api.Object{httpdDeployment()}, printOptions{}},
		{"get/deployments-wide.txt", "deploy", []api.Object{httpdDeployment()}, printOptions{wide: true}},
		{"get/deployments-with-kind.txt", "deploy", []api.Object{httpdDeployment()}, printOptions{withKind: true}},
		{"get/replicasets-wide.txt", "rs", []api.Object{httpdReplicaSet()}, printOptions{wide: true}},
		{"get/endpoints.txt", "ep", endpoints, printOptions{}},
		{"get/nodes.txt", "no", nodeFixtures(), printOptions{withNamespace: true}},
		{"get/nodes-wide.txt", "no", nodeFixtures(), printOptions{wide: true}},
		{"get/namespaces.txt", "ns", namespaces, printOptions{}},
		{"get/events.txt", "ev", eventObjects, printOptions{}},
		{"get/events-wide.txt", "ev", eventObjects, printOptions{wide: true}},
		{"get/leases.txt", "leases", leases, printOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var out strings.Builder
			if err := printTable(&out, resource(tt.resource), tt.objects, tt.opts, testNow); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.golden, out.String())
		})
	}
}

// A watch prints rows one by one; they must line up with the table above.
func TestTablePrinterRemembersWidths(t *testing.T) {
	r, _ := api.NewScheme().ByName("pods")
	var out strings.Builder
	p := newTablePrinter(&out, r, printOptions{})
	pods := podFixtures()
	for _, pod := range pods[:3] {
		if err := p.print([]api.Object{pod}, testNow); err != nil {
			t.Fatal(err)
		}
	}
	checkGolden(t, "get/pods-watch.txt", out.String())
}
