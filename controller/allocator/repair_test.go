package allocator

import (
	"context"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"kubelite/api"
)

func TestRepairReleasesLeakedKeysAfterTheGracePeriod(t *testing.T) {
	env := newTestEnv(t, Config{})
	live := env.mustCreate(t, service("live", api.ServiceTypeNodePort, port("", 80, 0)))
	// A create that crashed between its allocation and the write of its Service.
	crashed := env.mustCreate(t, service("crashed", api.ServiceTypeNodePort, port("", 80, 0)))
	// A key nobody can read.
	if _, err := env.cli.Put(ctxT(t), rangesPrefix+"serviceips/10.96.0.77", "garbage"); err != nil {
		t.Fatal(err)
	}
	services := []api.Service{*live}

	report, err := env.hook.Repair(ctxT(t), services)
	if err != nil {
		t.Fatal(err)
	}
	wantReleased := []Allocation{{Range: "serviceips", Value: "10.96.0.77", Owner: ""}}
	if !reflect.DeepEqual(report, RepairReport{Released: wantReleased}) {
		t.Fatalf("first repair: %+v,\nwant only the unreadable key released (the crashed create is within the grace period)", report)
	}

	env.clock.Advance(leakGracePeriod + time.Second)
	report, err = env.hook.Repair(ctxT(t), services)
	if err != nil {
		t.Fatal(err)
	}
	wantReleased = []Allocation{
		{Range: "serviceips", Value: crashed.Spec.ClusterIP, Owner: "default/crashed"},
		{Range: "servicenodeports", Value: itoa(crashed.Spec.Ports[0].NodePort), Owner: "default/crashed"},
	}
	if !reflect.DeepEqual(report, RepairReport{Released: wantReleased}) {
		t.Fatalf("repair after the grace period: %+v, want released %+v", report, wantReleased)
	}
	if got, want := env.keys(t), keysOf(live); !maps.Equal(got, want) {
		t.Fatalf("keys = %v, want only the live Service's %v", got, want)
	}
}

func TestRepairRecreatesMissingKeys(t *testing.T) {
	env := newTestEnv(t, Config{})
	svc := env.mustCreate(t, service("web", api.ServiceTypeNodePort, port("", 80, 0)))
	want := env.keys(t)
	if _, err := env.cli.Delete(ctxT(t), rangesPrefix+"serviceips/"+svc.Spec.ClusterIP); err != nil {
		t.Fatal(err)
	}

	report, err := env.hook.Repair(ctxT(t), []api.Service{*svc})
	if err != nil {
		t.Fatal(err)
	}
	wantReport := RepairReport{Recreated: []Allocation{{Range: "serviceips", Value: svc.Spec.ClusterIP, Owner: "default/web"}}}
	if !reflect.DeepEqual(report, wantReport) {
		t.Fatalf("repair: %+v, want %+v", report, wantReport)
	}
	if got := env.keys(t); !maps.Equal(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
	// The recreated key is a real allocation: nobody else gets the IP.
	other := service("other", "", port("", 80, 0))
	other.Spec.ClusterIP = svc.Spec.ClusterIP
	if _, err := env.create(t, other); !api.IsInvalid(err) {
		t.Fatalf("creating a Service with the repaired IP: %v, want Invalid", err)
	}
}

func TestRepairRewritesAKeyNamingAnotherOwner(t *testing.T) {
	env := newTestEnv(t, Config{})
	svc := service("web", "", port("", 80, 0))
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.96.0.42", []string{"10.96.0.42"}
	// The key belongs to a Service that was never stored; web got the IP
	// while the key was missing (say, etcd restored from an older backup).
	stranger := service("stranger", "", port("", 80, 0))
	stranger.Spec.ClusterIP = "10.96.0.42"
	env.mustCreate(t, stranger)
	env.clock.Advance(leakGracePeriod + time.Second)

	report, err := env.hook.Repair(ctxT(t), []api.Service{*svc})
	if err != nil {
		t.Fatal(err)
	}
	wantReport := RepairReport{Recreated: []Allocation{{Range: "serviceips", Value: "10.96.0.42", Owner: "default/web"}}}
	if !reflect.DeepEqual(report, wantReport) {
		t.Fatalf("repair: %+v, want %+v", report, wantReport)
	}
	if got := env.keys(t); !maps.Equal(got, map[string]string{"serviceips/10.96.0.42": "default/web"}) {
		t.Fatalf("keys = %v", got)
	}
}

func TestRepairReportsDuplicatesAndValuesOutOfRange(t *testing.T) {
	env := newTestEnv(t, Config{})
	first := env.mustCreate(t, service("first", api.ServiceTypeNodePort, port("", 80, 31000)))
	twin := api.DeepCopy(first)
	twin.Name, twin.UID = "twin", "uid-twin"
	stray := service("stray", "", port("", 80, 0))
	stray.Spec.ClusterIP = "10.0.0.5" // the service CIDR changed since
	want := env.keys(t)

	report, err := env.hook.Repair(ctxT(t), []api.Service{*twin, *first, *stray})
	if err != nil {
		t.Fatal(err)
	}
	wantReport := RepairReport{
		Duplicates: []Duplicate{
			{Range: "serviceips", Value: first.Spec.ClusterIP, Owners: []string{"default/first", "default/twin"}},
			{Range: "servicenodeports", Value: "31000", Owners: []string{"default/first", "default/twin"}},
		},
		OutOfRange: []Allocation{{Range: "serviceips", Value: "10.0.0.5", Owner: "default/stray"}},
	}
	if !reflect.DeepEqual(report, wantReport) {
		t.Fatalf("repair: %+v,\nwant %+v", report, wantReport)
	}
	if got := env.keys(t); !maps.Equal(got, want) {
		t.Fatalf("repair changed the keys: %v, want %v", got, want)
	}
}

func TestRunRepair(t *testing.T) {
	env := newTestEnv(t, Config{})
	svc := env.mustCreate(t, service("web", "", port("", 80, 0)))
	want := env.keys(t)
	if _, err := env.cli.Delete(ctxT(t), rangesPrefix+"serviceips/"+svc.Spec.ClusterIP); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(ctxT(t))
	lists := make(chan struct{})
	list := func(ctx context.Context) ([]api.Service, error) {
		select {
		case lists <- struct{}{}:
		case <-ctx.Done():
		}
		return []api.Service{*svc}, nil
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		env.hook.RunRepair(ctx, time.Millisecond, list)
	}()
	<-lists // the first pass has listed
	<-lists // ... and finished: the second has begun
	cancel()
	<-stopped
	if got := env.keys(t); !maps.Equal(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
}

func TestMetrics(t *testing.T) {
	registry := prometheus.NewRegistry()
	env := newTestEnv(t, Config{ServiceCIDR: "10.96.0.0/24", NodePortRange: "30000-30009", Metrics: registry})
	svc := env.mustCreate(t, service("web", api.ServiceTypeNodePort, port("", 80, 30005)))
	if _, err := env.create(t, service("late", api.ServiceTypeNodePort, port("", 80, 30005))); err == nil {
		t.Fatal("a second Service got node port 30005")
	}
	if _, err := env.hook.Repair(ctxT(t), []api.Service{*svc}); err != nil {
		t.Fatal(err)
	}

	want := map[string]float64{
		`allocations_total{range="serviceips",scope="dynamic"}`:                               2, // the refused one's was released
		`allocations_total{range="servicenodeports",scope="static"}`:                          1,
		`allocation_errors_total{range="servicenodeports",reason="allocated",scope="static"}`: 1,
		`allocated{range="serviceips"}`:                                                       1,
		`available{range="serviceips"}`:                                                       254 - 2 - 1, // two reserved
		`allocated{range="servicenodeports"}`:                                                 1,
		`available{range="servicenodeports"}`:                                                 9,
	}
	got := gather(t, registry)
	for name, value := range want {
		if got[name] != value {
			t.Errorf("%s = %v, want %v", name, got[name], value)
		}
	}
}

// gather reads the registry's metrics as `name{label="value",...}` → value
// (labels in alphabetical order),
// without the kubelite_service_allocator_ prefix.
func gather(t *testing.T, registry *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, family := range families {
		name := family.GetName()[len("kubelite_service_allocator_"):]
		for _, m := range family.GetMetric() {
			labels := ""
			for i, l := range m.GetLabel() {
				if i > 0 {
					labels += ","
				}
				labels += l.GetName() + `="` + l.GetValue() + `"`
			}
			value := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				value = m.GetCounter().GetValue()
			}
			values[name+"{"+labels+"}"] = value
		}
	}
	return values
}

// keysOf is what keys() shows for svc's allocations.
func keysOf(svc *api.Service) map[string]string {
	keys := map[string]string{}
	for _, key := range heldValues(svc) {
		keys[key] = svc.Namespace + "/" + svc.Name
	}
	return keys
}
