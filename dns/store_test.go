package dns

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"kubelite/api"
	"kubelite/api/client/cache"
)

// fakeInformer is an Informer over a map; set and remove change it and
// tell the handlers, as the real one does after a watch event.
type fakeInformer[PT api.Object] struct {
	mu       sync.RWMutex
	objects  map[string]PT
	handlers []cache.Handler[PT]
	synced   bool
}

func newFakeInformer[PT api.Object]() *fakeInformer[PT] {
	return &fakeInformer[PT]{objects: make(map[string]PT), synced: true}
}

func (f *fakeInformer[PT]) Get(ns, name string) (PT, bool) { return f.GetByKey(ns + "/" + name) }

func (f *fakeInformer[PT]) GetByKey(key string) (PT, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	obj, ok := f.objects[key]
	return obj, ok
}

func (f *fakeInformer[PT]) List(ns string) []PT { return f.ListSelector(ns, nil) }

func (f *fakeInformer[PT]) ListSelector(ns string, match func(PT) bool) []PT {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []PT
	for _, obj := range f.objects {
		if (ns == "" || obj.GetObjectMeta().Namespace == ns) && (match == nil || match(obj)) {
			out = append(out, obj)
		}
	}
	return out
}

func (f *fakeInformer[PT]) HasSynced() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.synced
}

func (f *fakeInformer[PT]) AddHandler(h cache.Handler[PT]) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers = append(f.handlers, h)
}

func (f *fakeInformer[PT]) set(obj PT) {
	f.mu.Lock()
	old, existed := f.objects[cache.Key(obj)]
	f.objects[cache.Key(obj)] = obj
	handlers := slices.Clone(f.handlers)
	f.mu.Unlock()
	for _, h := range handlers {
		if existed {
			h.OnUpdate(old, obj)
		} else {
			h.OnAdd(obj)
		}
	}
}

func (f *fakeInformer[PT]) remove(obj PT) {
	f.mu.Lock()
	delete(f.objects, cache.Key(obj))
	handlers := slices.Clone(f.handlers)
	f.mu.Unlock()
	for _, h := range handlers {
		h.OnDelete(obj)
	}
}

func TestInformerStoreReverseIndex(t *testing.T) {
	services := newFakeInformer[*api.Service]()
	endpointsInf := newFakeInformer[*api.Endpoints]()
	// Objects cached before the store exists are indexed too.
	services.set(service("shop", "web", "10.96.0.20"))

	store := NewInformerStore(services, endpointsInf)
	lookup := func(ip string) []ReverseName { return store.ReverseLookup(netip.MustParseAddr(ip)) }
	web := []ReverseName{{Namespace: "shop", Service: "web"}}

	if got := lookup("10.96.0.20"); !slices.Equal(got, web) {
		t.Fatalf("PTR owners of 10.96.0.20 = %v, want %v", got, web)
	}
	if !store.HasServices("shop") || store.HasServices("other") {
		t.Errorf("HasServices(shop)=%v HasServices(other)=%v, want true, false", store.HasServices("shop"), store.HasServices("other"))
	}

	// A new cluster IP replaces the old one.
	services.set(service("shop", "web", "10.96.0.21"))
	if got := lookup("10.96.0.20"); len(got) != 0 {
		t.Errorf("old cluster IP still owned by %v", got)
	}
	if got := lookup("10.96.0.21"); !slices.Equal(got, web) {
		t.Errorf("PTR owners of 10.96.0.21 = %v, want %v", got, web)
	}

	// A headless Service: its ready endpoints get PTRs, whichever of the
	// Service and its Endpoints arrives first.
	endpointsInf.set(endpoints("shop", "db", api.EndpointSubset{
		Addresses:         []api.EndpointAddress{{IP: "10.244.1.5", Hostname: "db-0"}, {IP: "10.244.2.7"}},
		NotReadyAddresses: []api.EndpointAddress{{IP: "10.244.3.9"}},
	}))
	if got := lookup("10.244.1.5"); len(got) != 0 {
		t.Errorf("endpoint of no Service owned by %v", got)
	}
	services.set(service("shop", "db", api.ClusterIPNone))
	if got, want := lookup("10.244.1.5"), []ReverseName{{"shop", "db", "db-0"}}; !slices.Equal(got, want) {
		t.Errorf("PTR owners of 10.244.1.5 = %v, want %v", got, want)
	}
	if got, want := lookup("10.244.2.7"), []ReverseName{{"shop", "db", "10-244-2-7"}}; !slices.Equal(got, want) {
		t.Errorf("PTR owners of 10.244.2.7 = %v, want %v", got, want)
	}
	if got := lookup("10.244.3.9"); len(got) != 0 {
		t.Errorf("not-ready endpoint owned by %v", got)
	}

	// An endpoint going away takes its PTR along.
	endpointsInf.set(endpoints("shop", "db", api.EndpointSubset{
		Addresses: []api.EndpointAddress{{IP: "10.244.2.7"}},
	}))
	if got := lookup("10.244.1.5"); len(got) != 0 {
		t.Errorf("removed endpoint still owned by %v", got)
	}

	// The same IP may belong to two headless Services.
	services.set(service("shop", "db-alias", api.ClusterIPNone))
	endpointsInf.set(endpoints("shop", "db-alias", api.EndpointSubset{Addresses: []api.EndpointAddress{{IP: "10.244.2.7"}}}))
	if got := lookup("10.244.2.7"); len(got) != 2 {
		t.Errorf("PTR owners of a shared IP = %v, want both Services", got)
	}

	// Deleting the Services empties the index and the namespace.
	for _, name := range []string{"web", "db", "db-alias"} {
		svc, _ := services.Get("shop", name)
		services.remove(svc)
	}
	for _, ip := range []string{"10.96.0.21", "10.244.2.7"} {
		if got := lookup(ip); len(got) != 0 {
			t.Errorf("PTR owners of %s after deleting every Service = %v", ip, got)
		}
	}
	if store.HasServices("shop") {
		t.Error("namespace still has Services after they were all deleted")
	}
	if len(store.reverse) != 0 || len(store.indexed) != 0 {
		t.Errorf("index not empty: reverse=%v indexed=%v", store.reverse, store.indexed)
	}
}

func TestInformerStoreHasSynced(t *testing.T) {
	services := newFakeInformer[*api.Service]()
	endpointsInf := newFakeInformer[*api.Endpoints]()
	endpointsInf.synced = false
	store := NewInformerStore(services, endpointsInf)
	if store.HasSynced() {
		t.Fatal("synced while the Endpoints cache is not")
	}
	endpointsInf.mu.Lock()
	endpointsInf.synced = true
	endpointsInf.mu.Unlock()
	if !store.HasSynced() {
		t.Fatal("not synced once both caches are")
	}
}

// Changes to Services and Endpoints arrive on two goroutines (one per
// informer) while queries read; run with -race.
func TestInformerStoreConcurrentChanges(t *testing.T) {
	services := newFakeInformer[*api.Service]()
	endpointsInf := newFakeInformer[*api.Endpoints]()
	store := NewInformerStore(services, endpointsInf)
	const rounds = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range rounds {
			services.set(service("ns", fmt.Sprintf("s%d", i%10), api.ClusterIPNone))
		}
	})
	wg.Go(func() {
		for i := range rounds {
			endpointsInf.set(endpoints("ns", fmt.Sprintf("s%d", i%10), api.EndpointSubset{
				Addresses: []api.EndpointAddress{{IP: fmt.Sprintf("10.244.0.%d", i%10+1)}},
			}))
		}
	})
	wg.Go(func() {
		for i := range rounds {
			_ = store.ReverseLookup(netip.AddrFrom4([4]byte{10, 244, 0, byte(i%10 + 1)}))
			_ = store.HasServices("ns")
		}
	})
	wg.Wait()
	// Whatever the interleaving, the end state is the caches' state.
	for i := range 10 {
		got := store.ReverseLookup(netip.AddrFrom4([4]byte{10, 244, 0, byte(i + 1)}))
		want := []ReverseName{{Namespace: "ns", Service: fmt.Sprintf("s%d", i), Hostname: fmt.Sprintf("10-244-0-%d", i+1)}}
		if !slices.Equal(got, want) {
			t.Errorf("PTR owners of 10.244.0.%d = %v, want %v", i+1, got, want)
		}
	}
}

func TestParseReverseName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // "" = not an address
	}{
		{"20.0.96.10.in-addr.arpa.", "10.96.0.20"},
		{"1.0.0.127.in-addr.arpa.", "127.0.0.1"},
		{"96.10.in-addr.arpa.", ""},
		{"256.0.96.10.in-addr.arpa.", ""},
		{"020.0.96.10.in-addr.arpa.", ""},
		{"x.0.96.10.in-addr.arpa.", ""},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "fd00::1"},
		{"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.", "4321:0:1:2:3:4:567:89ab"},
		{"0.d.f.ip6.arpa.", ""},
		{"example.com.", ""},
	} {
		ip, ok := parseReverseName(tc.name)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != tc.want {
			t.Errorf("parseReverseName(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDashedIP(t *testing.T) {
	for _, ip := range []string{"10.244.1.5", "fd00::1", "2001:db8::ff00:42:8329"} {
		addr := netip.MustParseAddr(ip)
		label := dashedIP(addr)
		back, ok := parseDashedIP(label)
		if !ok || back != addr {
			t.Errorf("parseDashedIP(dashedIP(%s) = %q) = %v, %v", ip, label, back, ok)
		}
	}
	for _, bad := range []string{"10-244-1", "10-244-1-256", "db-0", "1-2-3-4-5"} {
		if ip, ok := parseDashedIP(bad); ok {
			t.Errorf("parseDashedIP(%q) = %v, want no address", bad, ip)
		}
	}
}
