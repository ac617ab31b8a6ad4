package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// rangesPrefix is where the allocations of every range live in etcd, beside
// the API objects under /registry/<resource>/.
const rangesPrefix = "/registry/ranges/"

// owner names the Service that holds a value.
type owner struct {
	Name string // "namespace/name"
	UID  string // "" when not known
}

// holds reports whether rec names o. UIDs are compared only when both are
// known, so that a Service deleted and created again under the same name
// does not own its predecessor's leftovers.
func (o owner) holds(rec record) bool {
	if rec.Owner != o.Name {
		return false
	}
	return rec.UID == "" || o.UID == "" || rec.UID == o.UID
}

// record is the value of one allocation key.
type record struct {
	Owner string `json:"owner"`
	UID   string `json:"uid,omitempty"`
	// AllocatedAt lets repair tell a leak from a create still in flight.
	AllocatedAt time.Time `json:"allocatedAt"`
}

// storedRecord is a record as read back, with the key's revision for
// compare-and-swap. A value that does not decode is kept as a zero record
// (no owner, allocated at the zero time), which repair treats as leaked.
type storedRecord struct {
	record
	modRevision int64
}

func decodeRecord(data []byte) record {
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return record{}
	}
	return rec
}

// rangeStore keeps the allocations of one range in etcd: one key per
// allocated value, created only if absent, deleted only by its owner.
// It is safe for concurrent use, also by several processes.
type rangeStore struct {
	client  *clientv3.Client
	name    string // "serviceips": the key folder and the metrics label
	values  valueRange
	now     func() time.Time
	intN    func(n int) int // random number in [0, n)
	metrics *metrics
	logger  *slog.Logger
}

func (s *rangeStore) prefix() string          { return rangesPrefix + s.name + "/" }
func (s *rangeStore) key(value string) string { return s.prefix() + value }

// claim allocates value, which o asked for. It fails with ErrNotInRange,
// a *ReservedError or ErrAllocated.
func (s *rangeStore) claim(ctx context.Context, value string, o owner) error {
	err := s.tryClaim(ctx, value, o)
	s.count(scopeStatic, err)
	return err
}

func (s *rangeStore) tryClaim(ctx context.Context, value string, o owner) error {
	i, ok := s.values.indexOf(value)
	if !ok {
		return ErrNotInRange
	}
	if reservedFor := s.values.reservedFor(i); reservedFor != "" && reservedFor != o.Name {
		return &ReservedError{Value: value, Owner: reservedFor}
	}
	created, err := s.create(ctx, value, o)
	if err != nil {
		return err
	}
	if !created {
		return ErrAllocated
	}
	return nil
}

// claimAny allocates a free value for o and returns it; ErrFull when none
// is left. It reads which values are taken, picks one of the others and
// creates its key; when another allocator got there first, it picks again.
func (s *rangeStore) claimAny(ctx context.Context, o owner) (string, error) {
	value, err := s.tryClaimAny(ctx, o)
	s.count(scopeDynamic, err)
	return value, err
}

func (s *rangeStore) tryClaimAny(ctx context.Context, o owner) (string, error) {
	taken, err := s.takenIndexes(ctx)
	if err != nil {
		return "", err
	}
	for {
		i, err := pickFree(s.values, taken, s.intN)
		if err != nil {
			return "", err
		}
		value := s.values.valueAt(i)
		created, err := s.create(ctx, value, o)
		if err != nil {
			return "", err
		}
		if created {
			return value, nil
		}
		taken[i] = true // lost a race for it: each loss shrinks the choice, so this ends
	}
}

// create writes o's record at value's key if the key does not exist, and
// reports whether it did.
func (s *rangeStore) create(ctx context.Context, value string, o owner) (bool, error) {
	return s.put(ctx, value, o, 0)
}

// put writes o's record at value's key if the key is still at modRevision
// (0: does not exist), and reports whether it did.
func (s *rangeStore) put(ctx context.Context, value string, o owner, modRevision int64) (bool, error) {
	data, err := json.Marshal(record{Owner: o.Name, UID: o.UID, AllocatedAt: s.now().UTC()})
	if err != nil {
		return false, fmt.Errorf("encoding allocation record: %w", err)
	}
	key := s.key(value)
	unchanged := clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)
	if modRevision == 0 {
		unchanged = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	resp, err := s.client.Txn(ctx).If(unchanged).Then(clientv3.OpPut(key, string(data))).Commit()
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", key, err)
	}
	return resp.Succeeded, nil
}

// release gives value back if o still holds it. A value held by someone
// else, or by no one, is left alone: releasing is safe to repeat.
func (s *rangeStore) release(ctx context.Context, value string, o owner) error {
	key := s.key(value)
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	kv := resp.Kvs[0]
	if rec := decodeRecord(kv.Value); !o.holds(rec) {
		s.logger.Debug("not releasing a value held by another owner",
			"key", key, "owner", rec.Owner, "releaser", o.Name)
		return nil
	}
	_, err = s.deleteIfUnchanged(ctx, value, kv.ModRevision)
	return err
}

// deleteIfUnchanged deletes value's key if it is still at modRevision, and
// reports whether it did.
func (s *rangeStore) deleteIfUnchanged(ctx context.Context, value string, modRevision int64) (bool, error) {
	key := s.key(value)
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("deleting %s: %w", key, err)
	}
	return resp.Succeeded, nil
}

// takenIndexes reads which values of the range are allocated.
func (s *rangeStore) takenIndexes(ctx context.Context) (map[int]bool, error) {
	resp, err := s.client.Get(ctx, s.prefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", s.prefix(), err)
	}
	taken := make(map[int]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if i, ok := s.values.indexOf(string(kv.Key[len(s.prefix()):])); ok {
			taken[i] = true
		}
	}
	s.observe(len(resp.Kvs), taken)
	return taken, nil
}

// snapshot reads every allocation of the range, keyed by value (keys
// outside the range included: a range may have shrunk since).
func (s *rangeStore) snapshot(ctx context.Context) (map[string]storedRecord, error) {
	resp, err := s.client.Get(ctx, s.prefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", s.prefix(), err)
	}
	records := make(map[string]storedRecord, len(resp.Kvs))
	taken := make(map[int]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		value := string(kv.Key[len(s.prefix()):])
		records[value] = storedRecord{record: decodeRecord(kv.Value), modRevision: kv.ModRevision}
		if i, ok := s.values.indexOf(value); ok {
			taken[i] = true
		}
	}
	s.observe(len(resp.Kvs), taken)
	return records, nil
}

// observe updates the gauges from a listing: keys found, and values neither
// taken nor reserved.
func (s *rangeStore) observe(keys int, taken map[int]bool) {
	unavailable := len(taken)
	for _, i := range s.values.reserved() {
		if !taken[i] {
			unavailable++
		}
	}
	s.metrics.allocated.WithLabelValues(s.name).Set(float64(keys))
	s.metrics.available.WithLabelValues(s.name).Set(float64(s.values.size() - unavailable))
}

// count records the outcome of one allocation in the metrics.
func (s *rangeStore) count(scope string, err error) {
	if err == nil {
		s.metrics.allocations.WithLabelValues(s.name, scope).Inc()
		return
	}
	var reserved *ReservedError
	reason := "error"
	switch {
	case errors.Is(err, ErrFull):
		reason = "full"
	case errors.Is(err, ErrAllocated):
		reason = "allocated"
	case errors.Is(err, ErrNotInRange):
		reason = "not_in_range"
	case errors.As(err, &reserved):
		reason = "reserved"
	}
	s.metrics.failures.WithLabelValues(s.name, scope, reason).Inc()
}
