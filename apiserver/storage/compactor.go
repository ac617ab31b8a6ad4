package storage

import (
	"context"
	"time"
)

// RunCompactor compacts etcd's history every interval (Kubernetes uses five
// minutes) down to the newest keep revisions, until ctx ends. Without it
// etcd keeps every version of every object forever. Watches that fall
// further behind than keep revisions get Gone and re-list.
//
// Several API servers sharing one etcd may each run a compactor: compacting
// to a revision that is already compacted is a no-op. interval must be
// positive.
func (s *Store) RunCompactor(ctx context.Context, interval time.Duration, keep int64) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := s.compactKeeping(ctx, keep); err != nil && ctx.Err() == nil {
			s.logger.Warn("periodic compaction failed; retrying next interval", "err", err)
		}
	}
}

// compactKeeping compacts to the current revision minus keep.
func (s *Store) compactKeeping(ctx context.Context, keep int64) error {
	current, err := s.CurrentRevision(ctx)
	if err != nil {
		return err
	}
	target := current - keep
	if target <= 0 {
		return nil
	}
	if err := s.Compact(ctx, target); err != nil {
		return err
	}
	s.logger.Debug("compacted etcd history", "revision", target, "current", current)
	return nil
}
