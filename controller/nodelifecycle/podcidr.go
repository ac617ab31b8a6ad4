package nodelifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// cidrRange is the cluster CIDR cut into equal per-node subnets.
type cidrRange struct {
	cluster  netip.Prefix
	maskSize int
	count    int
}

// parseCIDRRange parses the cluster CIDR and the per-node mask size.
func parseCIDRRange(cidr string, maskSize int) (cidrRange, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return cidrRange{}, fmt.Errorf("cluster CIDR %q: %w", cidr, err)
	}
	if !prefix.Addr().Is4() {
		return cidrRange{}, fmt.Errorf("cluster CIDR %q: only IPv4 is supported", cidr)
	}
	if maskSize < prefix.Bits() || maskSize > 30 {
		return cidrRange{}, fmt.Errorf("node CIDR mask size /%d does not fit in cluster CIDR %s", maskSize, prefix)
	}
	if maskSize-prefix.Bits() > 16 {
		return cidrRange{}, fmt.Errorf("cluster CIDR %s holds more than 65536 /%d node subnets", prefix, maskSize)
	}
	return cidrRange{cluster: prefix.Masked(), maskSize: maskSize, count: 1 << (maskSize - prefix.Bits())}, nil
}

// subnet returns the i-th node subnet (0 ≤ i < count).
func (r cidrRange) subnet(i int) netip.Prefix {
	base := r.cluster.Addr().As4()
	value := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	value += uint32(i) << (32 - r.maskSize)
	addr := netip.AddrFrom4([4]byte{byte(value >> 24), byte(value >> 16), byte(value >> 8), byte(value)})
	return netip.PrefixFrom(addr, r.maskSize)
}

// contains reports whether cidr is one of the range's node subnets.
func (r cidrRange) contains(cidr string) bool {
	p, err := netip.ParsePrefix(cidr)
	return err == nil && p.Bits() == r.maskSize && p.Masked() == p && r.cluster.Contains(p.Addr())
}

// firstFree returns the lowest node subnet that is not in used and for
// which try succeeds; try may fail because another allocation took the
// subnet meanwhile, and the search then goes on.
func (r cidrRange) firstFree(used map[string]bool, try func(cidr string) (bool, error)) (string, error) {
	for i := range r.count {
		cidr := r.subnet(i).String()
		if used[cidr] {
			continue
		}
		ok, err := try(cidr)
		if err != nil {
			return "", err
		}
		if ok {
			return cidr, nil
		}
	}
	return "", errRangeFull
}

var errRangeFull = errors.New("no free pod CIDR left")

// claimStore records which node holds which pod CIDR, so that two
// allocations — two workers, or two servers during a leader change —
// never hand out the same CIDR. The Node object stays the record users see.
type claimStore interface {
	// claim records node as the holder of cidr unless another node holds
	// it; it returns the holder after the call.
	claim(ctx context.Context, cidr, node string) (holder string, err error)
	// release forgets cidr if node holds it.
	release(ctx context.Context, cidr, node string) error
	// list returns every claim: cidr → node.
	list(ctx context.Context) (map[string]string, error)
}

// podCIDRPrefix is where claims live in etcd, beside the Service IP and
// NodePort allocations (/registry/ranges/serviceips/...).
const podCIDRPrefix = "/registry/ranges/podcidrs/"

// etcdClaims keeps one etcd key per claimed CIDR, created only if absent
// (an etcd transaction), e.g. /registry/ranges/podcidrs/10.244.3.0-24.
type etcdClaims struct {
	client *clientv3.Client
	now    func() time.Time
}

// claimRecord is the value of a claim key, in the format of the Service
// allocations.
type claimRecord struct {
	Owner       string    `json:"owner"`
	AllocatedAt time.Time `json:"allocatedAt"`
}

func claimKey(cidr string) string { return podCIDRPrefix + strings.ReplaceAll(cidr, "/", "-") }

func cidrOfKey(key string) string {
	name := strings.TrimPrefix(key, podCIDRPrefix)
	if i := strings.LastIndexByte(name, '-'); i >= 0 {
		return name[:i] + "/" + name[i+1:]
	}
	return name
}

func (s *etcdClaims) claim(ctx context.Context, cidr, node string) (string, error) {
	value, err := json.Marshal(claimRecord{Owner: node, AllocatedAt: s.now().UTC()})
	if err != nil {
		return "", err
	}
	key := claimKey(cidr)
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return "", fmt.Errorf("claiming pod CIDR %s: %w", cidr, err)
	}
	if resp.Succeeded {
		return node, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return "", fmt.Errorf("claiming pod CIDR %s: claim vanished while read", cidr)
	}
	var held claimRecord
	if err := json.Unmarshal(kvs[0].Value, &held); err != nil {
		return "", fmt.Errorf("claim of pod CIDR %s does not decode: %w", cidr, err)
	}
	return held.Owner, nil
}

func (s *etcdClaims) release(ctx context.Context, cidr, node string) error {
	key := claimKey(cidr)
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reading the claim of pod CIDR %s: %w", cidr, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	var held claimRecord
	if json.Unmarshal(resp.Kvs[0].Value, &held) == nil && held.Owner != node {
		return nil // another node's now
	}
	// Delete only the version read, so that a claim taken meanwhile stays.
	_, err = s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("releasing pod CIDR %s: %w", cidr, err)
	}
	return nil
}

func (s *etcdClaims) list(ctx context.Context) (map[string]string, error) {
	resp, err := s.client.Get(ctx, podCIDRPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing pod CIDR claims: %w", err)
	}
	claims := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var held claimRecord
		if err := json.Unmarshal(kv.Value, &held); err != nil {
			continue // unreadable: neither holds nor frees anything we know of
		}
		claims[cidrOfKey(string(kv.Key))] = held.Owner
	}
	return claims, nil
}

// memoryClaims is a claimStore for a single server without etcd access
// (and for tests): it serialises this process's allocations only.
type memoryClaims struct {
	mu     sync.Mutex
	claims map[string]string
}

func newMemoryClaims() *memoryClaims { return &memoryClaims{claims: map[string]string{}} }

func (s *memoryClaims) claim(_ context.Context, cidr, node string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if holder, ok := s.claims[cidr]; ok {
		return holder, nil
	}
	s.claims[cidr] = node
	return node, nil
}

func (s *memoryClaims) release(_ context.Context, cidr, node string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claims[cidr] == node {
		delete(s.claims, cidr)
	}
	return nil
}

func (s *memoryClaims) list(context.Context) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.claims), nil
}
