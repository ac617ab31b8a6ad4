package leader

import (
	"context"
	"fmt"
	"time"

	"kubelite/api"
	"kubelite/api/client"
)

// mirrorLease keeps the Lease kube-system/{name} naming this leader until
// ctx (the term) ends, renewing it a few times per TTL as Kubernetes'
// leader election renews its lock.
func (e *elector) mirrorLease(ctx context.Context, acquired time.Time) {
	ticker := time.NewTicker(max(time.Duration(e.ttl)*time.Second/3, 100*time.Millisecond))
	defer ticker.Stop()
	for {
		if err := e.writeLease(ctx, acquired); err != nil && ctx.Err() == nil {
			e.logger.Debug("mirroring the leader into its Lease failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// writeLease creates or renews the Lease; a change of holder counts a transition.
func (e *elector) writeLease(ctx context.Context, acquired time.Time) error {
	leases := client.For[api.Lease](e.mirror, api.NamespaceSystem)
	now := api.MicroTime{Time: time.Now().UTC()}
	current, err := leases.Get(ctx, e.name)
	if api.IsNotFound(err) {
		_, err = leases.Create(ctx, &api.Lease{
			ObjectMeta: api.ObjectMeta{Name: e.name, Namespace: api.NamespaceSystem},
			Spec: api.LeaseSpec{
				HolderIdentity:       api.Ptr(e.identity),
				LeaseDurationSeconds: api.Ptr(int32(e.ttl)),
				AcquireTime:          &api.MicroTime{Time: acquired.UTC()},
				RenewTime:            &now,
				LeaseTransitions:     api.Ptr(int32(0)),
			},
		})
		if err != nil {
			return fmt.Errorf("creating lease %s/%s: %w", api.NamespaceSystem, e.name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading lease %s/%s: %w", api.NamespaceSystem, e.name, err)
	}
	next := api.DeepCopy(current)
	if next.Spec.HolderIdentity == nil || *next.Spec.HolderIdentity != e.identity {
		transitions := int32(0)
		if next.Spec.LeaseTransitions != nil {
			transitions = *next.Spec.LeaseTransitions + 1
		}
		next.Spec.HolderIdentity = api.Ptr(e.identity)
		next.Spec.AcquireTime = &api.MicroTime{Time: acquired.UTC()}
		next.Spec.LeaseTransitions = &transitions
	}
	next.Spec.LeaseDurationSeconds = api.Ptr(int32(e.ttl))
	next.Spec.RenewTime = &now
	if _, err := leases.Update(ctx, next); err != nil {
		return fmt.Errorf("renewing lease %s/%s: %w", api.NamespaceSystem, e.name, err)
	}
	return nil
}
