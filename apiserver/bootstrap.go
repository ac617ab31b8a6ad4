package apiserver

import (
	"context"
	"fmt"

	"kubelite/api"
)

// Bootstrap creates what every cluster has from its first start: the system
// namespaces. It is idempotent, so it runs on every start.
func (s *Server) Bootstrap(ctx context.Context) error {
	nsRes, _ := s.scheme.ByName("namespaces")
	store := s.store.For(nsRes)
	for _, name := range api.SystemNamespaces() {
		ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: name}}
		api.Default(ns)
		prepareForCreate(ns)
		if _, err := store.Create(ctx, ns); err != nil && !api.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", name, err)
		}
	}
	return nil
}
