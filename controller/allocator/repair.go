package allocator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"kubelite/api"
)

// leakGracePeriod is how old an allocation must be before repair deletes it
// for want of a Service holding it: younger ones may belong to a create
// between its allocation and the write of its Service.
const leakGracePeriod = time.Minute

// Allocation is one value of a range and the Service named as its holder.
type Allocation struct {
	Range string // "serviceips" or "servicenodeports"
	Value string // "10.96.0.12", "31000"
	Owner string // "namespace/name"
}

// Duplicate is a value that several Services hold.
type Duplicate struct {
	Range  string
	Value  string
	Owners []string
}

// RepairReport says what one repair pass found and did.
type RepairReport struct {
	// Recreated are keys written for values that Services hold: the key was
	// missing, or named an owner that does not hold the value.
	Recreated []Allocation
	// Released are keys deleted because no Service holds their value
	// (Owner is the name the key gave).
	Released []Allocation
	// Duplicates are values that more than one Service holds. Repair cannot
	// mend them: all but one of those Services must be recreated.
	Duplicates []Duplicate
	// OutOfRange are values Services hold outside the configured ranges
	// (the ranges were changed). They keep the keys they have; no new ones
	// are written.
	OutOfRange []Allocation
}

// Repair makes the allocation keys agree with services, the complete list
// of Services: it recreates the keys of values they hold, deletes keys no
// Service holds (once older than a grace period, for a create may be in
// flight), and reports values held twice. It is what Kubernetes' repair
// controllers do after a crash between an allocation and the write of its
// Service, or after etcd was restored from a backup.
//
// The allocations are read after services was listed, so a Service deleted
// in between looks as if it lost its key, which is then recreated and
// released by a later pass. RunRepair reads them first and avoids that.
func (h *ServiceHook) Repair(ctx context.Context, services []api.Service) (RepairReport, error) {
	snap, err := h.snapshot(ctx)
	if err != nil {
		return RepairReport{}, err
	}
	return h.repair(ctx, services, snap)
}

// RunRepair repairs at once and then every interval until ctx ends. list
// returns every Service (all namespaces).
func (h *ServiceHook) RunRepair(ctx context.Context, interval time.Duration, list func(context.Context) ([]api.Service, error)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if _, err := h.repairOnce(ctx, list); err != nil && ctx.Err() == nil {
			h.logger.Warn("repair failed; retrying at the next interval", "err", err, "interval", interval)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// repairOnce reads the allocations before it lists the Services, so that
// the list is the newer of the two: a key a listed Service got after the
// snapshot already exists when repair tries to recreate it (and the
// create-if-absent does nothing), and a key whose Service went after the
// snapshot is already gone or truly leaked.
func (h *ServiceHook) repairOnce(ctx context.Context, list func(context.Context) ([]api.Service, error)) (RepairReport, error) {
	snap, err := h.snapshot(ctx)
	if err != nil {
		return RepairReport{}, err
	}
	services, err := list(ctx)
	if err != nil {
		return RepairReport{}, fmt.Errorf("listing services: %w", err)
	}
	return h.repair(ctx, services, snap)
}

// rangeSnapshot is every allocation of one range, keyed by value.
type rangeSnapshot = map[string]storedRecord

type snapshots struct {
	ips, ports rangeSnapshot
}

func (h *ServiceHook) snapshot(ctx context.Context) (snapshots, error) {
	ips, err := h.ips.snapshot(ctx)
	if err != nil {
		return snapshots{}, err
	}
	ports, err := h.ports.snapshot(ctx)
	if err != nil {
		return snapshots{}, err
	}
	return snapshots{ips: ips, ports: ports}, nil
}

func (h *ServiceHook) repair(ctx context.Context, services []api.Service, snap snapshots) (RepairReport, error) {
	ipHolders := map[string][]owner{}
	portHolders := map[string][]owner{}
	for i := range services {
		svc := &services[i]
		o := ownerOf(svc)
		for _, ip := range heldClusterIPs(svc) {
			ipHolders[ip] = append(ipHolders[ip], o)
		}
		for _, np := range heldNodePorts(svc) {
			portHolders[np] = append(portHolders[np], o)
		}
	}
	var report RepairReport
	err := errors.Join(
		h.repairRange(ctx, h.ips, ipHolders, snap.ips, &report),
		h.repairRange(ctx, h.ports, portHolders, snap.ports, &report),
	)
	h.logReport(report)
	return report, err
}

// repairRange mends one range; it goes on past a failed key and returns
// every failure.
func (h *ServiceHook) repairRange(ctx context.Context, store *rangeStore, holders map[string][]owner, keys rangeSnapshot, report *RepairReport) error {
	var errs []error
	now := h.now()
	for _, value := range slices.Sorted(maps.Keys(holders)) {
		owners := holders[value]
		slices.SortFunc(owners, func(a, b owner) int { return cmp.Compare(a.Name, b.Name) })
		if len(owners) > 1 {
			report.Duplicates = append(report.Duplicates, Duplicate{Range: store.name, Value: value, Owners: ownerNames(owners)})
		}
		if _, ok := store.values.indexOf(value); !ok {
			for _, o := range owners {
				report.OutOfRange = append(report.OutOfRange, Allocation{Range: store.name, Value: value, Owner: o.Name})
			}
			continue
		}
		rec, exists := keys[value]
		if exists && (anyHolds(owners, rec.record) || now.Sub(rec.AllocatedAt) < leakGracePeriod) {
			continue
		}
		var modRevision int64 // 0: the key must still be absent
		if exists {
			modRevision = rec.modRevision
		}
		written, err := store.put(ctx, value, owners[0], modRevision)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if written {
			report.Recreated = append(report.Recreated, Allocation{Range: store.name, Value: value, Owner: owners[0].Name})
		}
	}
	for _, value := range slices.Sorted(maps.Keys(keys)) {
		rec := keys[value]
		if _, held := holders[value]; held || now.Sub(rec.AllocatedAt) < leakGracePeriod {
			continue
		}
		deleted, err := store.deleteIfUnchanged(ctx, value, rec.modRevision)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if deleted {
			report.Released = append(report.Released, Allocation{Range: store.name, Value: value, Owner: rec.Owner})
		}
	}
	return errors.Join(errs...)
}

func (h *ServiceHook) logReport(r RepairReport) {
	for _, a := range r.Recreated {
		h.logger.Info("repair: recreated a missing allocation", "range", a.Range, "value", a.Value, "service", a.Owner)
	}
	for _, a := range r.Released {
		h.logger.Info("repair: released a leaked allocation", "range", a.Range, "value", a.Value, "owner", a.Owner)
	}
	for _, d := range r.Duplicates {
		h.logger.Warn("repair: value held by several services; recreate all but one of them",
			"range", d.Range, "value", d.Value, "services", d.Owners)
	}
	for _, a := range r.OutOfRange {
		h.logger.Warn("repair: service holds a value outside the configured range; recreate it",
			"range", a.Range, "value", a.Value, "service", a.Owner)
	}
}

func anyHolds(owners []owner, rec record) bool {
	return slices.ContainsFunc(owners, func(o owner) bool { return o.holds(rec) })
}

func ownerNames(owners []owner) []string {
	names := make([]string, len(owners))
	for i, o := range owners {
		names[i] = o.Name
	}
	return names
}
