package proxy

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"kubelite/api"
	"kubelite/api/client/cache"
)

// fakeSource is an in-memory list+watch cache: Set and Delete change it and
// call the handlers, as an informer does after a watch event.
type fakeSource[PT api.Object] struct {
	mu       sync.Mutex
	objects  map[string]PT
	handlers []cache.Handler[PT]
	version  int
	synced   chan struct{} // closed once "loaded"
	once     sync.Once
}

func newFakeSource[PT api.Object](synced bool, objs ...PT) *fakeSource[PT] {
	s := &fakeSource[PT]{objects: make(map[string]PT), synced: make(chan struct{})}
	for _, obj := range objs {
		s.version++
		obj.GetObjectMeta().ResourceVersion = strconv.Itoa(s.version)
		s.objects[cache.Key(obj)] = obj
	}
	if synced {
		s.markSynced()
	}
	return s
}

func (s *fakeSource[PT]) List(namespace string) []PT {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PT
	for _, obj := range s.objects {
		if namespace == "" || obj.GetObjectMeta().Namespace == namespace {
			out = append(out, obj)
		}
	}
	return out
}

// markSynced is the end of the first list.
func (s *fakeSource[PT]) markSynced() { s.once.Do(func() { close(s.synced) }) }

func (s *fakeSource[PT]) WaitForSync(ctx context.Context) bool {
	select {
	case <-s.synced:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *fakeSource[PT]) AddHandler(h cache.Handler[PT]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers = append(s.handlers, h)
}

// Set adds or replaces obj (with a new resourceVersion) and notifies.
func (s *fakeSource[PT]) Set(obj PT) {
	s.mu.Lock()
	s.version++
	obj.GetObjectMeta().ResourceVersion = strconv.Itoa(s.version)
	old, existed := s.objects[cache.Key(obj)]
	s.objects[cache.Key(obj)] = obj
	handlers := slices.Clone(s.handlers)
	s.mu.Unlock()
	for _, h := range handlers {
		switch {
		case existed && h.OnUpdate != nil:
			h.OnUpdate(old, obj)
		case !existed && h.OnAdd != nil:
			h.OnAdd(obj)
		}
	}
}

// Delete removes the object with key ns/name and notifies.
func (s *fakeSource[PT]) Delete(key string) {
	s.mu.Lock()
	old, existed := s.objects[key]
	delete(s.objects, key)
	handlers := slices.Clone(s.handlers)
	s.mu.Unlock()
	if !existed {
		return
	}
	for _, h := range handlers {
		if h.OnDelete != nil {
			h.OnDelete(old)
		}
	}
}

type fakeConntrack struct {
	mu    sync.Mutex
	flows []ConntrackFlow
}

func (c *fakeConntrack) DeleteFlows(ctx context.Context, flows []ConntrackFlow) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flows = append(c.flows, flows...)
	return len(flows), nil
}

func (c *fakeConntrack) deleted() []ConntrackFlow {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.flows)
}

type fakeSysctls struct {
	mu     sync.Mutex
	values map[string]string
}

func (s *fakeSysctls) Set(name, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = make(map[string]string)
	}
	s.values[name] = value
	return nil
}

type fakeAnnouncer struct {
	mu    sync.Mutex
	addrs []netip.Addr
	calls int
}

func (a *fakeAnnouncer) Announce(ctx context.Context, addrs []netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addrs = slices.Clone(addrs)
	a.calls++
	return nil
}

func (a *fakeAnnouncer) announced() []netip.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.addrs)
}

// Object builders for tests.

func clusterIPService(namespace, name, clusterIP string, ports ...api.ServicePort) *api.Service {
	svc := &api.Service{
		ObjectMeta: api.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       api.ServiceSpec{Type: api.ServiceTypeClusterIP, ClusterIP: clusterIP, Ports: ports},
	}
	api.Default(svc)
	return svc
}

func tcpPort(port, target int32) api.ServicePort {
	return api.ServicePort{Protocol: api.ProtocolTCP, Port: port, TargetPort: api.FromInt(target)}
}

func udpPort(port, target int32) api.ServicePort {
	return api.ServicePort{Protocol: api.ProtocolUDP, Port: port, TargetPort: api.FromInt(target)}
}

// endpointsOf lists ips as ready addresses on node1 with one unnamed port.
func endpointsOf(namespace, name, protocol string, port int32, ips ...string) *api.Endpoints {
	var addresses []api.EndpointAddress
	for _, ip := range ips {
		addresses = append(addresses, api.EndpointAddress{IP: ip, NodeName: api.Ptr("node1")})
	}
	eps := &api.Endpoints{ObjectMeta: api.ObjectMeta{Namespace: namespace, Name: name}}
	if len(addresses) > 0 {
		eps.Subsets = []api.EndpointSubset{{Addresses: addresses, Ports: []api.EndpointPort{{Port: port, Protocol: protocol}}}}
	}
	return eps
}

func readyNode(name string, ready bool) *api.Node {
	status := api.ConditionFalse
	if ready {
		status = api.ConditionTrue
	}
	return &api.Node{
		ObjectMeta: api.ObjectMeta{Name: name},
		Status:     api.NodeStatus{Conditions: []api.NodeCondition{{Type: api.NodeReady, Status: status}}},
	}
}
