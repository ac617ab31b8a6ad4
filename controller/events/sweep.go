package events

import (
	"context"
	"time"

	"kubelite/api"
	"kubelite/api/client"
)

// sweepLoop deletes old Events every SweepInterval until ctx ends.
func (b *Broadcaster) sweepLoop(ctx context.Context) {
	ticker := time.NewTicker(b.cfg.SweepInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if n, err := b.Sweep(ctx); err != nil {
				b.logger.Warn("sweeping old events failed", "deleted", n, "err", err)
			} else if n > 0 {
				b.logger.Debug("swept old events", "deleted", n)
			}
		}
	}
}

// Sweep deletes every Event whose last occurrence is older than MaxAge and
// returns how many it deleted. Each delete is conditional on the version
// listed, so an Event that recurred meanwhile is kept.
func (b *Broadcaster) Sweep(ctx context.Context) (int, error) {
	list, err := client.For[api.Event](b.client, "").List(ctx, client.ListOptions{})
	if err != nil {
		return 0, err
	}
	cutoff := b.cfg.Now().Add(-b.cfg.MaxAge)
	deleted := 0
	for i := range list.Items {
		event := &list.Items[i]
		if !lastSeen(event).Before(cutoff) {
			continue
		}
		err := b.eventsIn(event.Namespace).Delete(ctx, event.Name, client.DeleteOptions{ResourceVersion: event.ResourceVersion})
		switch {
		case err == nil:
			deleted++
		case api.IsNotFound(err) || api.IsConflict(err):
			// Gone already, or it recurred: either way nothing to do.
		default:
			return deleted, err
		}
	}
	return deleted, nil
}

// lastSeen is when an Event last occurred, whichever of its timestamps is set.
func lastSeen(e *api.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}
