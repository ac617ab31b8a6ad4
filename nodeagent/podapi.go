package nodeagent

import (
	"context"
	"fmt"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/nodeagent/podworker"
)

// podAPI is how the pod workers report to the API server.
type podAPI struct {
	client *client.Client
}

var _ podworker.PodAPI = podAPI{}

func (p podAPI) UpdateStatus(ctx context.Context, pod *api.Pod) (*api.Pod, error) {
	return client.For[api.Pod](p.client, pod.Namespace).UpdateStatus(ctx, pod)
}

// ConfirmDeletion deletes the Pod with gracePeriodSeconds=0, on condition
// that it is still the version the agent knows (a resourceVersion
// precondition), so that a new Pod of the same name is never deleted by
// mistake. On a conflict it reads the Pod again: if it is still ours, it
// tries again with its new version.
func (p podAPI) ConfirmDeletion(ctx context.Context, pod *api.Pod) error {
	pods := client.For[api.Pod](p.client, pod.Namespace)
	version := pod.ResourceVersion
	for range 5 {
		err := pods.Delete(ctx, pod.Name, client.DeleteOptions{GracePeriodSeconds: api.Ptr[int64](0), ResourceVersion: version})
		switch {
		case err == nil || api.IsNotFound(err):
			return nil
		case !api.IsConflict(err):
			return fmt.Errorf("confirm deletion of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		current, err := pods.Get(ctx, pod.Name)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("confirm deletion of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		if current.UID != pod.UID {
			return nil // ours is gone; this is another Pod of the same name
		}
		version = current.ResourceVersion
	}
	return fmt.Errorf("confirm deletion of pod %s/%s: it keeps changing", pod.Namespace, pod.Name)
}
