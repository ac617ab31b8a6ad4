package allocator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api"
)

// releaseTimeout bounds giving values back. Releases run on a context
// detached from the request's: a client that hangs up must not make the
// server leak what it allocated for it.
const releaseTimeout = 10 * time.Second

// Config configures the Service allocator. Empty fields take the defaults.
type Config struct {
	ServiceCIDR   string // DefaultServiceCIDR when empty
	NodePortRange string // DefaultNodePortRange when empty
	// Logger receives allocation and repair messages; nil means slog.Default().
	Logger *slog.Logger
	// Metrics registers the allocator's Prometheus metrics; nil keeps them
	// unexported.
	Metrics prometheus.Registerer
}

// ServiceHook gives Services their cluster IPs and node ports. It is the
// API server's hook for "services": it allocates before a create or update
// is stored (and gives back what it allocated when the write fails), and
// releases what an update or a delete let go.
//
// Allocations live in etcd (see the package documentation), so any number
// of API servers, each with its own ServiceHook over the same etcd cluster,
// never hand out one value twice. A ServiceHook is safe for concurrent use.
type ServiceHook struct {
	ipRange   IPRange
	portRange PortRange
	ips       *rangeStore
	ports     *rangeStore
	now       func() time.Time
	logger    *slog.Logger
}

// NewServiceHook returns the allocator for Services over cli.
func NewServiceHook(cli *clientv3.Client, cfg Config) (*ServiceHook, error) {
	return newServiceHook(cli, cfg, time.Now)
}

// newServiceHook is NewServiceHook with a clock (tests move it forward).
func newServiceHook(cli *clientv3.Client, cfg Config, now func() time.Time) (*ServiceHook, error) {
	if cli == nil {
		return nil, errors.New("service allocator: no etcd client")
	}
	ipRange, err := ParseIPRange(cmp.Or(cfg.ServiceCIDR, DefaultServiceCIDR))
	if err != nil {
		return nil, fmt.Errorf("service allocator: %w", err)
	}
	portRange, err := ParsePortRange(cmp.Or(cfg.NodePortRange, DefaultNodePortRange))
	if err != nil {
		return nil, fmt.Errorf("service allocator: %w", err)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("service allocator: %w", err)
	}
	logger := cmp.Or(cfg.Logger, slog.Default()).With("component", "service-allocator")
	newStore := func(name string, values valueRange) *rangeStore {
		return &rangeStore{
			client:  cli,
			name:    name,
			values:  values,
			now:     now,
			intN:    rand.IntN, // safe for concurrent use
			metrics: m,
			logger:  logger.With("range", name),
		}
	}
	return &ServiceHook{
		ipRange:   ipRange,
		portRange: portRange,
		ips:       newStore("serviceips", ipRange),
		ports:     newStore("servicenodeports", portRange),
		now:       now,
		logger:    logger,
	}, nil
}

// ServiceCIDR is the range cluster IPs come from.
func (h *ServiceHook) ServiceCIDR() IPRange { return h.ipRange }

// NodePortRange is the range node ports come from.
func (h *ServiceHook) NodePortRange() PortRange { return h.portRange }

// BeforeCreate gives a new Service its cluster IP and node ports: the
// requested ones when they are free, otherwise free ones. When it refuses,
// nothing stays allocated; the returned rollback gives back everything it
// allocated (the API server calls it when storing the Service fails).
func (h *ServiceHook) BeforeCreate(ctx context.Context, obj api.Object) (rollback func(), err error) {
	svc, err := asService(obj)
	if err != nil {
		return nil, err
	}
	return h.allocate(ctx, svc, nil)
}

// BeforeUpdate keeps what the Service already holds, fills in what the
// update omitted (as Kubernetes' patchAllocatedValues does), and allocates
// what the update newly needs or asks for. Values the update lets go are
// released by AfterUpdate, once the update is stored.
func (h *ServiceHook) BeforeUpdate(ctx context.Context, obj, old api.Object) (rollback func(), err error) {
	svc, err := asService(obj)
	if err != nil {
		return nil, err
	}
	oldSvc, err := asService(old)
	if err != nil {
		return nil, err
	}
	dropTypeDependentFields(svc, oldSvc)
	patchAllocatedValues(svc, oldSvc)
	return h.allocate(ctx, svc, oldSvc)
}

// AfterUpdate releases what old held and the stored update no longer does.
func (h *ServiceHook) AfterUpdate(ctx context.Context, obj, old api.Object) {
	svc, err := asService(obj)
	if err != nil {
		h.logger.Error("after update", "err", err)
		return
	}
	oldSvc, err := asService(old)
	if err != nil {
		h.logger.Error("after update", "err", err)
		return
	}
	h.release(ctx, ownerOf(oldSvc),
		without(heldClusterIPs(oldSvc), heldClusterIPs(svc)),
		without(heldNodePorts(oldSvc), heldNodePorts(svc)))
}

// AfterDelete releases everything the deleted Service held.
func (h *ServiceHook) AfterDelete(ctx context.Context, obj api.Object) {
	svc, err := asService(obj)
	if err != nil {
		h.logger.Error("after delete", "err", err)
		return
	}
	h.release(ctx, ownerOf(svc), heldClusterIPs(svc), heldNodePorts(svc))
}

// allocate runs one allocation for a create (old is nil) or an update.
func (h *ServiceHook) allocate(ctx context.Context, svc, old *api.Service) (rollback func(), err error) {
	op := &operation{hook: h, owner: ownerOf(svc)}
	if err := op.allocateClusterIP(ctx, svc, old); err != nil {
		op.rollback(ctx)
		return nil, err
	}
	if err := op.allocateNodePorts(ctx, svc, old); err != nil {
		op.rollback(ctx)
		return nil, err
	}
	if len(op.ips)+len(op.ports) > 0 {
		h.logger.Debug("allocated", "service", op.owner.Name, "clusterIPs", op.ips, "nodePorts", op.ports)
	}
	return func() { op.rollback(ctx) }, nil
}

// release gives back values o holds. What it cannot release it logs: the
// repair loop reclaims it later.
func (h *ServiceHook) release(ctx context.Context, o owner, ips, ports []string) {
	if len(ips)+len(ports) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for _, s := range []struct {
		store  *rangeStore
		values []string
	}{{h.ips, ips}, {h.ports, ports}} {
		for _, value := range s.values {
			if err := s.store.release(ctx, value, o); err != nil {
				h.logger.Warn("could not release; the repair loop will reclaim it",
					"service", o.Name, "range", s.store.name, "value", value, "err", err)
			}
		}
	}
	h.logger.Debug("released", "service", o.Name, "clusterIPs", ips, "nodePorts", ports)
}

// operation remembers what one create or update allocated, so that a
// refused or failed write gives back exactly that and nothing else.
type operation struct {
	hook  *ServiceHook
	owner owner
	ips   []string
	ports []string
}

func (op *operation) rollback(ctx context.Context) {
	op.hook.release(ctx, op.owner, op.ips, op.ports)
	op.ips, op.ports = nil, nil
}

// allocateClusterIP gives svc its cluster IP, unless it is headless or an
// ExternalName Service, or (on update) already holds it.
func (op *operation) allocateClusterIP(ctx context.Context, svc, old *api.Service) error {
	if !needsClusterIP(svc) {
		return nil
	}
	normalizeClusterIPs(svc, old)
	if err := checkClusterIPs(svc); err != nil {
		return err
	}
	requested := svc.Spec.ClusterIP
	switch {
	case requested == api.ClusterIPNone:
		return nil
	case old != nil && slices.Contains(heldClusterIPs(old), requested):
		return nil // kept from before
	case requested != "":
		if err := op.hook.ips.claim(ctx, requested, op.owner); err != nil {
			return op.clusterIPError(svc, requested, err)
		}
		op.ips = append(op.ips, requested)
		return nil
	}
	ip, err := op.claimAnyClusterIP(ctx)
	if err != nil {
		return api.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: %w", err))
	}
	op.ips = append(op.ips, ip)
	svc.Spec.ClusterIP = ip
	svc.Spec.ClusterIPs = []string{ip}
	return nil
}

// claimAnyClusterIP picks a free cluster IP. The two well-known Services
// get their reserved address when they do not ask for one.
func (op *operation) claimAnyClusterIP(ctx context.Context) (string, error) {
	if reserved, ok := op.hook.ipRange.ReservedIP(op.owner.Name); ok {
		err := op.hook.ips.claim(ctx, reserved.String(), op.owner)
		if err == nil {
			return reserved.String(), nil
		}
		if !errors.Is(err, ErrAllocated) {
			return "", err
		}
	}
	return op.hook.ips.claimAny(ctx, op.owner)
}

// clusterIPError words a refused cluster IP as Kubernetes does.
func (op *operation) clusterIPError(svc *api.Service, ip string, err error) error {
	var reason string
	var reserved *ReservedError
	switch {
	case errors.Is(err, ErrAllocated):
		reason = "provided IP is already allocated"
	case errors.Is(err, ErrNotInRange):
		reason = fmt.Sprintf("the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, op.hook.ipRange)
	case errors.As(err, &reserved):
		reason = fmt.Sprintf("the provided IP (%s) is reserved for %s", ip, reserved.Owner)
	default:
		return api.NewInternalError(fmt.Errorf("failed to allocate IP %s: %w", ip, err))
	}
	return invalid(svc, api.Invalid("spec.clusterIPs", clusterIPsValue(svc.Spec.ClusterIPs),
		fmt.Sprintf("failed to allocate IP %s: %s", ip, reason)))
}

// allocateNodePorts gives each port of a NodePort or LoadBalancer Service
// its node port: the requested one, the one it held before the update, or a
// free one. Ports with the same port number (TCP and UDP of port 53) share
// one node port, as in Kubernetes.
func (op *operation) allocateNodePorts(ctx context.Context, svc, old *api.Service) error {
	if !needsNodePort(svc) {
		return nil
	}
	kept := map[string]bool{}
	if old != nil {
		for _, np := range heldNodePorts(old) {
			kept[np] = true
		}
	}
	ports := svc.Spec.Ports
	byServicePort := map[int32]int32{}
	// Requested values first, so that a value picked at random for one port
	// never takes the one a later port asks for.
	for i := range ports {
		p := &ports[i]
		if p.NodePort == 0 {
			continue
		}
		if _, ok := byServicePort[p.Port]; !ok {
			byServicePort[p.Port] = p.NodePort
		}
		value := strconv.Itoa(int(p.NodePort))
		if kept[value] {
			continue
		}
		if err := op.hook.ports.claim(ctx, value, op.owner); err != nil {
			return op.nodePortError(svc, i, p.NodePort, err)
		}
		kept[value] = true
		op.ports = append(op.ports, value)
	}
	if !shouldAllocateNodePorts(svc) {
		return nil
	}
	for i := range ports {
		p := &ports[i]
		if p.NodePort != 0 {
			continue
		}
		if np, ok := byServicePort[p.Port]; ok {
			p.NodePort = np
			continue
		}
		value, err := op.hook.ports.claimAny(ctx, op.owner)
		if err != nil {
			return api.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %w", err))
		}
		op.ports = append(op.ports, value)
		np, err := strconv.Atoi(value)
		if err != nil {
			return api.NewInternalError(fmt.Errorf("allocated node port %q is not a number: %w", value, err))
		}
		p.NodePort = int32(np)
		byServicePort[p.Port] = p.NodePort
	}
	return nil
}

// nodePortError words a refused node port as Kubernetes does.
func (op *operation) nodePortError(svc *api.Service, i int, nodePort int32, err error) error {
	var reason string
	switch {
	case errors.Is(err, ErrAllocated):
		reason = "provided port is already allocated"
	case errors.Is(err, ErrNotInRange):
		reason = fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", op.hook.portRange)
	default:
		return api.NewInternalError(fmt.Errorf("failed to allocate node port %d: %w", nodePort, err))
	}
	return invalid(svc, api.Invalid(fmt.Sprintf("spec.ports[%d].nodePort", i), nodePort, reason))
}

// clusterIPsValue is spec.clusterIPs as a field error's bad value. It prints
// as Kubernetes prints a []string, []string{"10.0.0.5"}, whether the error
// is formatted with %v or %#v.
type clusterIPsValue []string

func (v clusterIPsValue) String() string   { return fmt.Sprintf("%#v", []string(v)) }
func (v clusterIPsValue) GoString() string { return v.String() }

func invalid(svc *api.Service, errs ...*api.FieldError) error {
	return api.NewInvalid("", "Service", svc.Name, errs)
}

// normalizeClusterIPs keeps clusterIP and clusterIPs in step, as Kubernetes
// does before allocating: clusterIPs follows clusterIP when the client set
// only clusterIP, or changed clusterIP and left clusterIPs as it was.
func normalizeClusterIPs(svc, old *api.Service) {
	spec := &svc.Spec
	if old != nil && spec.ClusterIP != old.Spec.ClusterIP && slices.Equal(spec.ClusterIPs, old.Spec.ClusterIPs) {
		spec.ClusterIPs = nil
	}
	if len(spec.ClusterIPs) == 0 && spec.ClusterIP != "" {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
}

// checkClusterIPs refuses what cannot be allocated, in the words of
// Kubernetes' validation (which runs after the hook).
func checkClusterIPs(svc *api.Service) error {
	spec := &svc.Spec
	ips := clusterIPsValue(spec.ClusterIPs)
	switch {
	case spec.ClusterIP == "" && len(spec.ClusterIPs) > 0:
		return invalid(svc, api.Invalid("spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified"))
	case spec.ClusterIP == "":
		return nil
	case spec.ClusterIPs[0] != spec.ClusterIP:
		return invalid(svc, api.Invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"))
	case len(spec.ClusterIPs) > 1:
		return invalid(svc, api.Invalid("spec.clusterIPs", ips, "this cluster is not configured for dual-stack services"))
	case spec.ClusterIP == api.ClusterIPNone:
		return nil
	}
	if _, err := netip.ParseAddr(spec.ClusterIP); err != nil {
		return invalid(svc, api.Invalid("spec.clusterIPs[0]", spec.ClusterIP, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
	}
	return nil
}

// dropTypeDependentFields clears what a type change made meaningless, as
// Kubernetes does, but only values the client did not change itself:
// switching to ExternalName drops the cluster IP, switching to ClusterIP or
// ExternalName drops the node ports. AfterUpdate then releases them.
func dropTypeDependentFields(svc, old *api.Service) {
	spec, oldSpec := &svc.Spec, &old.Spec
	if needsClusterIP(old) && !needsClusterIP(svc) {
		if spec.ClusterIP == oldSpec.ClusterIP && slices.Equal(spec.ClusterIPs, oldSpec.ClusterIPs) {
			spec.ClusterIP, spec.ClusterIPs = "", nil
		}
		if slices.Equal(spec.IPFamilies, oldSpec.IPFamilies) {
			spec.IPFamilies = nil
		}
		if equalPointers(spec.IPFamilyPolicy, oldSpec.IPFamilyPolicy) {
			spec.IPFamilyPolicy = nil
		}
	}
	if needsNodePort(old) && !needsNodePort(svc) && noNewNodePorts(svc, old) {
		for i := range spec.Ports {
			spec.Ports[i].NodePort = 0
		}
	}
}

// noNewNodePorts reports whether svc asks for no node port old did not have.
func noNewNodePorts(svc, old *api.Service) bool {
	oldValues := map[int32]bool{}
	for _, p := range old.Spec.Ports {
		oldValues[p.NodePort] = true
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 && !oldValues[p.NodePort] {
			return false
		}
	}
	return true
}

// patchAllocatedValues fills in what an update omitted but the Service
// already holds, as Kubernetes does: the cluster IP, and each port's node
// port, found by port name, or else by port number and protocol. A value
// the update gives explicitly to another port is not patched in.
func patchAllocatedValues(svc, old *api.Service) {
	spec, oldSpec := &svc.Spec, &old.Spec
	if needsClusterIP(old) && needsClusterIP(svc) {
		if spec.ClusterIP == "" {
			spec.ClusterIP = oldSpec.ClusterIP
		}
		if len(spec.ClusterIPs) == 0 && len(oldSpec.ClusterIPs) > 0 {
			spec.ClusterIPs = slices.Clone(oldSpec.ClusterIPs)
		}
	}
	if !needsNodePort(old) || !needsNodePort(svc) {
		return
	}
	requested := map[int32]bool{}
	for _, p := range spec.Ports {
		if p.NodePort != 0 {
			requested[p.NodePort] = true
		}
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.NodePort != 0 {
			continue
		}
		if np := previousNodePort(*p, oldSpec.Ports); !requested[np] {
			p.NodePort = np
		}
	}
}

// previousNodePort is the node port that p had before the update: that of
// the old port with the same name, or else with the same number and
// protocol; 0 when there was none.
func previousNodePort(p api.ServicePort, oldPorts []api.ServicePort) int32 {
	for _, o := range oldPorts {
		if o.Name == p.Name {
			return o.NodePort
		}
	}
	for _, o := range oldPorts {
		if o.Port == p.Port && protocolOf(o) == protocolOf(p) {
			return o.NodePort
		}
	}
	return 0
}

func protocolOf(p api.ServicePort) string { return cmp.Or(p.Protocol, api.ProtocolTCP) }

// needsClusterIP: every type but ExternalName has a cluster IP (or is
// headless, clusterIP: None).
func needsClusterIP(svc *api.Service) bool { return svc.Spec.Type != api.ServiceTypeExternalName }

// needsNodePort: NodePort and LoadBalancer Services may hold node ports.
func needsNodePort(svc *api.Service) bool {
	return svc.Spec.Type == api.ServiceTypeNodePort || svc.Spec.Type == api.ServiceTypeLoadBalancer
}

// shouldAllocateNodePorts: whether ports without a node port get one.
// LoadBalancer Services may opt out (allocateLoadBalancerNodePorts: false)
// and then hold only the node ports they ask for.
func shouldAllocateNodePorts(svc *api.Service) bool {
	switch svc.Spec.Type {
	case api.ServiceTypeNodePort:
		return true
	case api.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// heldClusterIPs is the cluster IP svc holds, in a slice (empty or one).
func heldClusterIPs(svc *api.Service) []string {
	if !needsClusterIP(svc) {
		return nil
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil {
		return nil // none yet, or headless
	}
	return []string{ip.String()}
}

// heldNodePorts are the distinct node ports svc holds.
func heldNodePorts(svc *api.Service) []string {
	if !needsNodePort(svc) {
		return nil
	}
	var values []string
	for _, p := range svc.Spec.Ports {
		if value := strconv.Itoa(int(p.NodePort)); p.NodePort != 0 && !slices.Contains(values, value) {
			values = append(values, value)
		}
	}
	return values
}

// without returns the values of all that are not in some.
func without(all, some []string) []string {
	var rest []string
	for _, v := range all {
		if !slices.Contains(some, v) {
			rest = append(rest, v)
		}
	}
	return rest
}

func ownerOf(svc *api.Service) owner {
	return owner{Name: svc.Namespace + "/" + svc.Name, UID: svc.UID}
}

func asService(obj api.Object) (*api.Service, error) {
	svc, ok := obj.(*api.Service)
	if !ok {
		return nil, api.NewInternalError(fmt.Errorf("service allocator: got a %T, want a *api.Service", obj))
	}
	return svc, nil
}

func equalPointers[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
