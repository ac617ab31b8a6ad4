package deployment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/controller/controllertest"
	"kubelite/controller/deployment"
	"kubelite/controller/replicaset"
	"kubelite/controller/scheduler"
)

// startCluster runs the Deployment and ReplicaSet controllers and the
// scheduler on a real API server with three simulated nodes.
func startCluster(t *testing.T) *controllertest.Cluster {
	t.Helper()
	cluster := controllertest.StartCluster(t, 3)
	dc := deployment.New(cluster.Client, cluster.Informers, cluster.Recorder, deployment.Config{Logger: cluster.Logger})
	rsc := replicaset.New(cluster.Client, cluster.Informers, cluster.Recorder, replicaset.Config{Logger: cluster.Logger})
	sched := scheduler.New(cluster.Client, cluster.Informers, cluster.Recorder, scheduler.Config{Logger: cluster.Logger})
	cluster.Run(t,
		func(ctx context.Context) { dc.Run(ctx, 2) },
		func(ctx context.Context) { rsc.Run(ctx, 2) },
		func(ctx context.Context) { sched.Run(ctx, 2) },
	)
	return cluster
}

func newDeployment(name string, replicas int32, image string) *api.Deployment {
	labels := map[string]string{"app": name}
	return &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.DeploymentSpec{
			Replicas: api.Ptr(replicas),
			Selector: &api.LabelSelector{MatchLabels: labels},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: labels},
				Spec: api.PodSpec{Containers: []api.Container{{
					Name: "httpd", Image: image, Ports: []api.ContainerPort{{ContainerPort: 80}},
				}}},
			},
		},
	}
}

func createDeployment(t *testing.T, c *client.Client, d *api.Deployment) *api.Deployment {
	t.Helper()
	created, err := client.For[api.Deployment](c, "default").Create(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// updateDeployment applies change to the current Deployment, retrying on
// conflicts with the controller's own writes.
func updateDeployment(t *testing.T, c *client.Client, name string, change func(*api.Deployment)) {
	t.Helper()
	deployments := client.For[api.Deployment](c, "default")
	for {
		d, err := deployments.Get(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		change(d)
		_, err = deployments.Update(t.Context(), d)
		if api.IsConflict(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
}

// rolloutStatus is `kubectl rollout status`'s verdict on a Deployment.
func rolloutStatus(d *api.Deployment) (message string, done bool) {
	if d.Generation > d.Status.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...", false
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	switch {
	case d.Status.UpdatedReplicas < replicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, d.Status.UpdatedReplicas, replicas), false
	case d.Status.Replicas > d.Status.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, d.Status.Replicas-d.Status.UpdatedReplicas), false
	case d.Status.AvailableReplicas < d.Status.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, d.Status.AvailableReplicas, d.Status.UpdatedReplicas), false
	}
	return fmt.Sprintf("deployment %q successfully rolled out", d.Name), true
}

// waitForRollout waits until `kubectl rollout status` would report success
// and exactly the Deployment's replicas run, all of the current template,
// with no other Pod left; it returns the Deployment and its Pods.
func waitForRollout(t *testing.T, c *client.Client, name, label string) (*api.Deployment, []api.Pod) {
	t.Helper()
	var d *api.Deployment
	var running []api.Pod
	controllertest.Eventually(t, "rollout of "+name, func() (bool, string) {
		var err error
		if d, err = client.For[api.Deployment](c, "default").Get(context.Background(), name); err != nil {
			return false, err.Error()
		}
		message, done := rolloutStatus(d)
		if !done {
			return false, message
		}
		newRS := newReplicaSet(t, c, d)
		if newRS == nil {
			return false, "no ReplicaSet for the current template"
		}
		hash := newRS.Labels[deployment.LabelPodTemplateHash]
		all := listPods(t, c, label)
		running = running[:0]
		for _, pod := range all {
			if isRunningReady(&pod) && pod.Labels[deployment.LabelPodTemplateHash] == hash {
				running = append(running, pod)
			}
		}
		return len(running) == len(all) && int32(len(running)) == *d.Spec.Replicas,
			fmt.Sprintf("%s; %d pods, %d running the template", message, len(all), len(running))
	})
	return d, running
}

func listPods(t *testing.T, c *client.Client, selector string) []api.Pod {
	t.Helper()
	list, err := client.For[api.Pod](c, "default").List(context.Background(), client.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func listReplicaSets(t *testing.T, c *client.Client, selector string) []api.ReplicaSet {
	t.Helper()
	list, err := client.For[api.ReplicaSet](c, "default").List(context.Background(), client.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// newReplicaSet returns the ReplicaSet running d's template, or nil.
func newReplicaSet(t *testing.T, c *client.Client, d *api.Deployment) *api.ReplicaSet {
	t.Helper()
	for _, rs := range listReplicaSets(t, c, "") {
		if ref := rs.ControllerRef(); ref != nil && ref.UID == d.UID &&
			rs.Spec.Template.Spec.Containers[0].Image == d.Spec.Template.Spec.Containers[0].Image {
			return &rs
		}
	}
	return nil
}

func isRunningReady(p *api.Pod) bool {
	return p.Status.Phase == api.PodRunning && p.IsReady() && p.DeletionTimestamp == nil
}

func condition(d *api.Deployment, conditionType string) *api.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == conditionType {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func TestDeploymentRunsReplicasAcrossNodes(t *testing.T) {
	cluster := startCluster(t)
	created := createDeployment(t, cluster.Client, newDeployment("httpd", 3, "httpd"))
	d, pods := waitForRollout(t, cluster.Client, "httpd", "app=httpd")

	// One ReplicaSet, named after the template hash, which labels it, its
	// selector, its template and its Pods.
	replicaSets := listReplicaSets(t, cluster.Client, "app=httpd")
	if len(replicaSets) != 1 {
		t.Fatalf("%d ReplicaSets, want 1", len(replicaSets))
	}
	rs := replicaSets[0]
	hash := rs.Labels[deployment.LabelPodTemplateHash]
	if !regexp.MustCompile(`^[bcdfghjklmnpqrstvwxz2456789]+$`).MatchString(hash) || rs.Name != "httpd-"+hash {
		t.Errorf("ReplicaSet %s with pod-template-hash %q; want httpd-<hash>", rs.Name, hash)
	}
	if rs.Spec.Selector.MatchLabels[deployment.LabelPodTemplateHash] != hash || rs.Spec.Template.Labels[deployment.LabelPodTemplateHash] != hash {
		t.Errorf("the hash is missing from the selector or template: %+v", rs.Spec)
	}
	if ref := rs.ControllerRef(); ref == nil || ref.UID != created.UID || ref.Kind != "Deployment" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("ReplicaSet controller reference = %+v", ref)
	}
	if rs.Annotations[deployment.AnnotationRevision] != "1" || d.Annotations[deployment.AnnotationRevision] != "1" {
		t.Errorf("revision annotations: ReplicaSet %q, Deployment %q; want 1", rs.Annotations[deployment.AnnotationRevision], d.Annotations[deployment.AnnotationRevision])
	}

	// Three Pods, one per node, each with an IP from its node's pod CIDR.
	nodes := map[string]bool{}
	for _, pod := range pods {
		nodes[pod.Spec.NodeName] = true
		if !strings.HasPrefix(pod.Name, rs.Name+"-") || len(pod.Name) != len(rs.Name)+6 {
			t.Errorf("pod %s is not named %s-<5 characters>", pod.Name, rs.Name)
		}
		cidr := netip.MustParsePrefix(cluster.Nodes.PodCIDR(pod.Spec.NodeName))
		if ip, err := netip.ParseAddr(pod.Status.PodIP); err != nil || !cidr.Contains(ip) {
			t.Errorf("pod %s has IP %q outside its node's pod CIDR %s", pod.Name, pod.Status.PodIP, cidr)
		}
	}
	if len(nodes) != 3 {
		t.Errorf("pods run on %d nodes, want spread over all 3", len(nodes))
	}

	// The status `kubectl get deploy` and `rollout status` read.
	want := api.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
	got := d.Status
	got.Conditions = nil
	if !equalJSON(got, want) {
		t.Errorf("status = %+v, want %+v", got, want)
	}
	if c := condition(d, api.DeploymentAvailable); c == nil || c.Status != api.ConditionTrue || c.Reason != deployment.ReasonMinimumReplicasAvailable {
		t.Errorf("Available condition = %+v", c)
	}
	wantMessage := fmt.Sprintf("ReplicaSet %q has successfully progressed.", rs.Name)
	if c := condition(d, api.DeploymentProgressing); c == nil || c.Status != api.ConditionTrue ||
		c.Reason != deployment.ReasonNewReplicaSetAvailable || c.Message != wantMessage {
		t.Errorf("Progressing condition = %+v, want NewReplicaSetAvailable %q", c, wantMessage)
	}

	scaled := cluster.Recorder.Find(deployment.ReasonScalingReplicaSet, fmt.Sprintf("Scaled up replica set %s to 3", rs.Name))
	if len(scaled) != 1 || scaled[0].Kind != "Deployment" || scaled[0].Name != "httpd" {
		t.Errorf("ScalingReplicaSet events = %v", scaled)
	}
	if created := cluster.Recorder.Find(replicaset.ReasonSuccessfulCreate, "Created pod: "+rs.Name+"-"); len(created) != 3 {
		t.Errorf("%d SuccessfulCreate events, want 3", len(created))
	}
}

func TestDeploymentReplacesDeletedPod(t *testing.T) {
	cluster := startCluster(t)
	createDeployment(t, cluster.Client, newDeployment("httpd", 3, "httpd"))
	_, pods := waitForRollout(t, cluster.Client, "httpd", "app=httpd")

	victim := pods[0]
	if err := client.For[api.Pod](cluster.Client, "default").Delete(t.Context(), victim.Name, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var replaced []api.Pod
	controllertest.Eventually(t, "a replacement pod", func() (bool, string) {
		_, replaced = waitForRollout(t, cluster.Client, "httpd", "app=httpd")
		return !slices.ContainsFunc(replaced, func(p api.Pod) bool { return p.Name == victim.Name }), "the deleted pod is still there"
	})
	ips := map[string]bool{}
	for _, pod := range replaced {
		if pod.Status.PodIP == victim.Status.PodIP {
			t.Errorf("replacement %s reuses the deleted pod's IP %s", pod.Name, pod.Status.PodIP)
		}
		ips[pod.Status.PodIP] = true
	}
	if len(ips) != 3 {
		t.Errorf("pod IPs are not unique: %v", ips)
	}
}

func TestDeploymentScales(t *testing.T) {
	cluster := startCluster(t)
	createDeployment(t, cluster.Client, newDeployment("httpd", 3, "httpd"))
	waitForRollout(t, cluster.Client, "httpd", "app=httpd")

	updateDeployment(t, cluster.Client, "httpd", func(d *api.Deployment) { d.Spec.Replicas = api.Ptr[int32](5) })
	d, _ := waitForRollout(t, cluster.Client, "httpd", "app=httpd")
	rs := newReplicaSet(t, cluster.Client, d)
	if n := cluster.Recorder.Find(deployment.ReasonScalingReplicaSet, fmt.Sprintf("Scaled up replica set %s to 5", rs.Name)); len(n) != 1 {
		t.Errorf("no scale-up event; events: %v", cluster.Recorder.Events())
	}

	// Scale down through the scale subresource, as `kubectl scale` does.
	scale, _ := json.Marshal(api.Scale{
		TypeMeta:   api.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: api.ObjectMeta{Name: "httpd", Namespace: "default"},
		Spec:       api.ScaleSpec{Replicas: 2},
	})
	deployments := cluster.Client.Resource(client.For[api.Deployment](cluster.Client, "default").Resource(), "default")
	if _, err := deployments.Subresource(t.Context(), http.MethodPut, "httpd", "scale", nil, scale); err != nil {
		t.Fatal(err)
	}
	d, _ = waitForRollout(t, cluster.Client, "httpd", "app=httpd")
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %d after scaling to 2", *d.Spec.Replicas)
	}
	if n := cluster.Recorder.Find(deployment.ReasonScalingReplicaSet, fmt.Sprintf("Scaled down replica set %s to 2", rs.Name)); len(n) != 1 {
		t.Errorf("no scale-down event; events: %v", cluster.Recorder.Events())
	}
	if got := len(listReplicaSets(t, cluster.Client, "app=httpd")); got != 1 {
		t.Errorf("scaling made %d ReplicaSets, want still 1", got)
	}
}

// podWatch follows the Pods of a Deployment through a watch of its own
// and checks a condition on every state it observes.
type podWatch struct {
	informer *cache.Informer[api.Pod, *api.Pod]
	check    func(pods []*api.Pod) error

	mu       sync.Mutex
	states   int
	failures []string
}

// watchPods starts checking every observed state of the Pods matching
// selector; it returns once the watch has its first list.
func watchPods(t *testing.T, c *client.Client, selector string, check func(pods []*api.Pod) error) *podWatch {
	t.Helper()
	w := &podWatch{
		informer: cache.NewInformer(client.For[api.Pod](c, "default"), client.ListOptions{LabelSelector: selector}, 0),
		check:    check,
	}
	// Handlers run one at a time, after the cache took the change in: each
	// call sees one state of the Pods, in the order etcd recorded them.
	onChange := func(*api.Pod) { w.observe() }
	w.informer.AddHandler(cache.Handler[*api.Pod]{
		OnAdd:    onChange,
		OnUpdate: func(_, pod *api.Pod) { onChange(pod) },
		OnDelete: onChange,
	})
	controllertest.Go(t, w.informer.Run)
	if !w.informer.WaitForSync(t.Context()) {
		t.Fatal("the pod watch did not sync")
	}
	return w
}

func (w *podWatch) observe() {
	err := w.check(w.informer.List(""))
	w.mu.Lock()
	defer w.mu.Unlock()
	w.states++
	if err != nil {
		w.failures = append(w.failures, err.Error())
	}
}

// result returns how many states were observed and the failed checks.
func (w *podWatch) result() (states int, failures []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.states, slices.Clone(w.failures)
}

func TestRollingUpdateKeepsMinimumAvailable(t *testing.T) {
	cluster := startCluster(t)
	tests := []struct {
		name               string
		replicas           int32
		surge, unavailable *api.IntOrString
		minAvailable       int
	}{
		{name: "defaults", replicas: 3, minAvailable: 3}, // 25%: surge 1, unavailable 0
		{name: "surge-and-unavailable", replicas: 4, surge: api.Ptr(api.FromInt(1)), unavailable: api.Ptr(api.FromInt(1)), minAvailable: 3},
		{name: "no-surge", replicas: 3, surge: api.Ptr(api.FromInt(0)), unavailable: api.Ptr(api.FromInt(1)), minAvailable: 2},
		{name: "percentages", replicas: 5, surge: api.Ptr(api.FromString("40%")), unavailable: api.Ptr(api.FromString("30%")), minAvailable: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			label := "app=" + tt.name
			d := newDeployment(tt.name, tt.replicas, "httpd:1")
			if tt.surge != nil {
				d.Spec.Strategy = api.DeploymentStrategy{
					Type:          api.RollingUpdateStrategy,
					RollingUpdate: &api.RollingUpdateDeployment{MaxSurge: tt.surge, MaxUnavailable: tt.unavailable},
				}
			}
			createDeployment(t, cluster.Client, d)
			before, _ := waitForRollout(t, cluster.Client, tt.name, label)
			oldRS := newReplicaSet(t, cluster.Client, before)
			oldHash := oldRS.Labels[deployment.LabelPodTemplateHash]

			sawBoth := false
			watch := watchPods(t, cluster.Client, label, func(pods []*api.Pod) error {
				available, oldPods, newPods := 0, 0, 0
				for _, pod := range pods {
					if isRunningReady(pod) {
						available++
					}
					if pod.Labels[deployment.LabelPodTemplateHash] == oldHash {
						oldPods++
					} else {
						newPods++
					}
				}
				if oldPods > 0 && newPods > 0 {
					sawBoth = true
				}
				if available < tt.minAvailable {
					return fmt.Errorf("%d available pods (%d old, %d new), below the minimum %d", available, oldPods, newPods, tt.minAvailable)
				}
				return nil
			})

			updateDeployment(t, cluster.Client, tt.name, func(d *api.Deployment) {
				d.Spec.Template.Spec.Containers[0].Image = "httpd:2"
			})
			after, pods := waitForRollout(t, cluster.Client, tt.name, label)

			states, failures := watch.result()
			if len(failures) > 0 {
				t.Errorf("%d of %d observed states broke maxUnavailable, e.g.: %s", len(failures), states, failures[0])
			}
			if !sawBoth {
				t.Error("no observed state had old and new pods together: the watch saw no rollout")
			}
			newRS := newReplicaSet(t, cluster.Client, after)
			for _, pod := range pods {
				if pod.Labels[deployment.LabelPodTemplateHash] != newRS.Labels[deployment.LabelPodTemplateHash] {
					t.Errorf("pod %s is not of the new template", pod.Name)
				}
			}
			controllertest.Eventually(t, "the old ReplicaSet at 0", func() (bool, string) {
				rs, err := client.For[api.ReplicaSet](cluster.Client, "default").Get(context.Background(), oldRS.Name)
				if err != nil {
					return false, err.Error()
				}
				return *rs.Spec.Replicas == 0 && rs.Status.Replicas == 0, fmt.Sprintf("spec %d status %d", *rs.Spec.Replicas, rs.Status.Replicas)
			})
			if after.Annotations[deployment.AnnotationRevision] != "2" || newRS.Annotations[deployment.AnnotationRevision] != "2" {
				t.Errorf("revisions after the update: Deployment %q, ReplicaSet %q; want 2",
					after.Annotations[deployment.AnnotationRevision], newRS.Annotations[deployment.AnnotationRevision])
			}
			t.Logf("watched %d pod states", states)
		})
	}
}

func TestRecreateStopsOldPodsFirst(t *testing.T) {
	cluster := startCluster(t)
	d := newDeployment("recreate", 3, "httpd:1")
	d.Spec.Strategy = api.DeploymentStrategy{Type: api.RecreateStrategy}
	createDeployment(t, cluster.Client, d)
	before, _ := waitForRollout(t, cluster.Client, "recreate", "app=recreate")
	oldHash := newReplicaSet(t, cluster.Client, before).Labels[deployment.LabelPodTemplateHash]

	watch := watchPods(t, cluster.Client, "app=recreate", func(pods []*api.Pod) error {
		var oldPods, newPods []string
		for _, pod := range pods {
			if pod.Labels[deployment.LabelPodTemplateHash] == oldHash {
				oldPods = append(oldPods, pod.Name)
			} else {
				newPods = append(newPods, pod.Name)
			}
		}
		if len(oldPods) > 0 && len(newPods) > 0 {
			return fmt.Errorf("old pods %v exist beside new pods %v", oldPods, newPods)
		}
		return nil
	})
	updateDeployment(t, cluster.Client, "recreate", func(d *api.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "httpd:2"
	})
	after, _ := waitForRollout(t, cluster.Client, "recreate", "app=recreate")

	states, failures := watch.result()
	if len(failures) > 0 {
		t.Errorf("%d of %d observed states mixed old and new pods, e.g.: %s", len(failures), states, failures[0])
	}
	newRS := newReplicaSet(t, cluster.Client, after)
	if newRS.Labels[deployment.LabelPodTemplateHash] == oldHash {
		t.Fatal("the image change did not make a new ReplicaSet")
	}
	if len(cluster.Recorder.Find(deployment.ReasonScalingReplicaSet, fmt.Sprintf("Scaled up replica set %s to 3", newRS.Name))) != 1 {
		t.Errorf("no scale-up event for %s; events: %v", newRS.Name, cluster.Recorder.Events())
	}
}

func TestRevisionHistoryLimitAndRollback(t *testing.T) {
	cluster := startCluster(t)
	d := newDeployment("history", 2, "httpd:1")
	d.Spec.RevisionHistoryLimit = api.Ptr[int32](1)
	createDeployment(t, cluster.Client, d)
	waitForRollout(t, cluster.Client, "history", "app=history")

	for _, image := range []string{"httpd:2", "httpd:3", "httpd:4"} {
		updateDeployment(t, cluster.Client, "history", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
		waitForRollout(t, cluster.Client, "history", "app=history")
	}

	// The new ReplicaSet and one old one (the latest) are kept.
	controllertest.Eventually(t, "the history trimmed to one old ReplicaSet", func() (bool, string) {
		var kept []string
		for _, rs := range listReplicaSets(t, cluster.Client, "app=history") {
			kept = append(kept, fmt.Sprintf("%s@%s:%d", rs.Spec.Template.Spec.Containers[0].Image,
				rs.Annotations[deployment.AnnotationRevision], *rs.Spec.Replicas))
		}
		slices.Sort(kept)
		return slices.Equal(kept, []string{"httpd:3@3:0", "httpd:4@4:2"}), fmt.Sprint(kept)
	})

	// Going back to the previous template reuses its ReplicaSet, which
	// becomes the newest revision.
	updateDeployment(t, cluster.Client, "history", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "httpd:3" })
	after, _ := waitForRollout(t, cluster.Client, "history", "app=history")
	if after.Annotations[deployment.AnnotationRevision] != "5" {
		t.Errorf("Deployment revision after the rollback = %q, want 5", after.Annotations[deployment.AnnotationRevision])
	}
	controllertest.Eventually(t, "the rolled-back ReplicaSet at revision 5", func() (bool, string) {
		var kept []string
		for _, rs := range listReplicaSets(t, cluster.Client, "app=history") {
			kept = append(kept, fmt.Sprintf("%s@%s:%d", rs.Spec.Template.Spec.Containers[0].Image,
				rs.Annotations[deployment.AnnotationRevision], *rs.Spec.Replicas))
		}
		slices.Sort(kept)
		return slices.Equal(kept, []string{"httpd:3@5:2", "httpd:4@4:0"}), fmt.Sprint(kept)
	})
}

// The tutorial's manifest, as written: apps/v1beta1, no selector.
func TestTutorialDeploymentFromV1beta1Manifest(t *testing.T) {
	cluster := startCluster(t)
	manifest, err := os.ReadFile("../../examples/httpd.yml")
	if err != nil {
		t.Fatal(err)
	}
	body, err := yaml.YAMLToJSON(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var typeMeta api.TypeMeta
	if err := json.Unmarshal(body, &typeMeta); err != nil {
		t.Fatal(err)
	}
	if typeMeta.APIVersion != "apps/v1beta1" {
		t.Fatalf("examples/httpd.yml has apiVersion %q; this test is about apps/v1beta1", typeMeta.APIVersion)
	}
	deployments := cluster.Client.Resource(client.For[api.Deployment](cluster.Client, "default").Resource(), "default")
	if _, err := deployments.Create(t.Context(), typeMeta.APIVersion, body, client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}

	d, pods := waitForRollout(t, cluster.Client, "httpd", "run=httpd")
	if message, _ := rolloutStatus(d); message != `deployment "httpd" successfully rolled out` {
		t.Errorf("rollout status = %q", message)
	}
	nodes := map[string]bool{}
	for _, pod := range pods {
		nodes[pod.Spec.NodeName] = true
		if pod.Spec.Containers[0].Image != "httpd" || pod.Spec.Containers[0].Ports[0].ContainerPort != 80 {
			t.Errorf("pod %s does not run the manifest's container: %+v", pod.Name, pod.Spec.Containers[0])
		}
	}
	if len(nodes) != 3 {
		t.Errorf("the tutorial's 3 pods run on %d nodes, want 3", len(nodes))
	}
}

func equalJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
