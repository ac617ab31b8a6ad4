package deployment

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"kubelite/api"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func intOrPercent(s string) *api.IntOrString {
	if s == "" {
		return nil
	}
	var v api.IntOrString
	if err := v.UnmarshalJSON([]byte(s)); err != nil {
		if err := v.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
			panic(err)
		}
	}
	return &v
}

// rollingDeployment is a RollingUpdate Deployment of replicas with the
// given maxSurge and maxUnavailable ("" = default 25%).
func rollingDeployment(replicas int32, surge, unavailable string) *api.Deployment {
	return &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default", Generation: 1},
		Spec: api.DeploymentSpec{
			Replicas: api.Ptr(replicas),
			Strategy: api.DeploymentStrategy{
				Type:          api.RollingUpdateStrategy,
				RollingUpdate: &api.RollingUpdateDeployment{MaxSurge: intOrPercent(surge), MaxUnavailable: intOrPercent(unavailable)},
			},
		},
	}
}

// rsState is a ReplicaSet in a table: its spec size, available Pods and age.
type rsState struct {
	name      string
	replicas  int32
	available int32
	age       int // minutes after t0; older ReplicaSets have smaller ages
	revision  int
}

func makeRS(s rsState) *api.ReplicaSet {
	rs := &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{
			Name:              s.name,
			UID:               "uid-" + s.name,
			CreationTimestamp: api.NewTime(t0.Add(time.Duration(s.age) * time.Minute)),
		},
		Spec:   api.ReplicaSetSpec{Replicas: api.Ptr(s.replicas)},
		Status: api.ReplicaSetStatus{Replicas: s.available, ReadyReplicas: s.available, AvailableReplicas: s.available},
	}
	if s.revision > 0 {
		rs.Annotations = map[string]string{AnnotationRevision: fmt.Sprint(s.revision)}
	}
	return rs
}

func makeRSs(states ...rsState) []*api.ReplicaSet {
	var out []*api.ReplicaSet
	for _, s := range states {
		out = append(out, makeRS(s))
	}
	return out
}

func planString(plan []scaleTarget) string {
	var parts []string
	for _, t := range plan {
		parts = append(parts, fmt.Sprintf("%s=%d", t.rs.Name, t.replicas))
	}
	return fmt.Sprint(parts)
}

func TestPodTemplateHash(t *testing.T) {
	template := &api.PodTemplateSpec{
		ObjectMeta: api.ObjectMeta{Labels: map[string]string{"run": "httpd"}},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd"}}},
	}
	hash := podTemplateHash(template, nil)
	if !regexp.MustCompile(`^[bcdfghjklmnpqrstvwxz2456789]{1,10}$`).MatchString(hash) {
		t.Errorf("hash %q is not a decimal number in the safe alphabet", hash)
	}
	if again := podTemplateHash(api.DeepCopy(template), nil); again != hash {
		t.Errorf("hash is not stable: %q then %q", hash, again)
	}
	changed := api.DeepCopy(template)
	changed.Spec.Containers[0].Image = "httpd:2.4"
	if podTemplateHash(changed, nil) == hash {
		t.Error("a different image gives the same hash")
	}
	if podTemplateHash(template, api.Ptr[int32](1)) == hash {
		t.Error("a collision count does not change the hash")
	}
}

func TestSafeEncodeString(t *testing.T) {
	// The digits map onto these letters, which is why Kubernetes' hashes
	// look like "5f7c8d9b6".
	if got, want := safeEncodeString("0123456789"), "456789bcdf"; got != want {
		t.Errorf("safeEncodeString(digits) = %q, want %q", got, want)
	}
}

func TestEqualIgnoreHash(t *testing.T) {
	a := &api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"run": "httpd"}}}
	b := &api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"run": "httpd", LabelPodTemplateHash: "abc"}}}
	if !equalIgnoreHash(a, b) || !equalIgnoreHash(b, a) {
		t.Error("templates that differ only in the hash label are not equal")
	}
	if b.Labels[LabelPodTemplateHash] != "abc" {
		t.Error("equalIgnoreHash changed its argument")
	}
	c := &api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"run": "other", LabelPodTemplateHash: "abc"}}}
	if equalIgnoreHash(a, c) {
		t.Error("templates with different labels are equal")
	}
}

func TestResolveFenceposts(t *testing.T) {
	tests := []struct {
		surge, unavailable         string
		replicas                   int32
		wantSurge, wantUnavailable int32
		wantErr                    bool
	}{
		{"25%", "25%", 3, 1, 0, false},  // surge rounds up, unavailable down
		{"25%", "25%", 4, 1, 1, false},  // exact
		{"25%", "25%", 10, 3, 2, false}, // 2.5 → 3 and 2
		{"0", "0", 10, 0, 1, false},     // both zero: one may be unavailable
		{"0%", "10%", 5, 0, 1, false},   // 0.5 rounds down to 0: one may be unavailable
		{"2", "1", 5, 2, 1, false},
		{"100%", "0", 3, 3, 0, false},
		{"", "", 3, 0, 1, false},
		{"x%", "1", 3, 0, 0, true},
		{"abc", "1", 3, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s of %d", tt.surge, tt.unavailable, tt.replicas), func(t *testing.T) {
			surge, unavailable, err := resolveFenceposts(intOrPercent(tt.surge), intOrPercent(tt.unavailable), tt.replicas)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tt.wantErr && (surge != tt.wantSurge || unavailable != tt.wantUnavailable) {
				t.Errorf("= %d, %d; want %d, %d", surge, unavailable, tt.wantSurge, tt.wantUnavailable)
			}
		})
	}
}

func TestMaxSurgeAndUnavailable(t *testing.T) {
	d := rollingDeployment(3, "", "") // defaults
	if maxSurge(d) != 1 || maxUnavailable(d) != 0 {
		t.Errorf("defaults for 3 replicas: surge %d unavailable %d; want 1, 0", maxSurge(d), maxUnavailable(d))
	}
	d = rollingDeployment(2, "0", "5")
	if got := maxUnavailable(d); got != 2 {
		t.Errorf("maxUnavailable above replicas = %d, want capped at 2", got)
	}
	d = rollingDeployment(0, "1", "1")
	if got := maxUnavailable(d); got != 0 {
		t.Errorf("maxUnavailable of 0 replicas = %d, want 0", got)
	}
	recreate := rollingDeployment(3, "1", "1")
	recreate.Spec.Strategy = api.DeploymentStrategy{Type: api.RecreateStrategy}
	if maxSurge(recreate) != 0 || maxUnavailable(recreate) != 0 {
		t.Error("Recreate has neither surge nor unavailable budget")
	}
}

func TestRollingNewReplicas(t *testing.T) {
	tests := []struct {
		name string
		d    *api.Deployment
		new  rsState
		old  []rsState
		want int32
	}{
		{"first step uses the surge", rollingDeployment(3, "1", "0"), rsState{name: "new"}, []rsState{{name: "old", replicas: 3}}, 1},
		{"at the surge limit it waits", rollingDeployment(3, "1", "0"), rsState{name: "new", replicas: 1}, []rsState{{name: "old", replicas: 3}}, 1},
		{"grows as old ones shrink", rollingDeployment(3, "1", "0"), rsState{name: "new", replicas: 1}, []rsState{{name: "old", replicas: 2}}, 2},
		{"never beyond replicas", rollingDeployment(3, "5", "0"), rsState{name: "new", replicas: 2}, []rsState{{name: "old", replicas: 1}}, 3},
		{"a fresh deployment starts whole", rollingDeployment(3, "25%", "25%"), rsState{name: "new"}, nil, 3},
		{"shrinks to replicas after a scale-down", rollingDeployment(2, "1", "0"), rsState{name: "new", replicas: 4}, nil, 2},
		{"big surge", rollingDeployment(10, "50%", "0"), rsState{name: "new"}, []rsState{{name: "old", replicas: 10}}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newRS := makeRS(tt.new)
			all := append(makeRSs(tt.old...), newRS)
			if got := rollingNewReplicas(tt.d, all, newRS); got != tt.want {
				t.Errorf("rollingNewReplicas = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPlanOldScaleDown(t *testing.T) {
	tests := []struct {
		name string
		d    *api.Deployment
		new  rsState
		old  []rsState
		want string
	}{
		{
			name: "nothing new is available yet: keep every old pod",
			d:    rollingDeployment(3, "1", "0"),
			new:  rsState{name: "new", replicas: 1, available: 0},
			old:  []rsState{{name: "old", replicas: 3, available: 3}},
			want: "[]",
		},
		{
			name: "one new available: one old may go",
			d:    rollingDeployment(3, "1", "0"),
			new:  rsState{name: "new", replicas: 1, available: 1},
			old:  []rsState{{name: "old", replicas: 3, available: 3}},
			want: "[old=2]",
		},
		{
			name: "maxUnavailable lets old pods go before new ones are up",
			d:    rollingDeployment(4, "1", "1"),
			new:  rsState{name: "new", replicas: 1, available: 0},
			old:  []rsState{{name: "old", replicas: 4, available: 4}},
			want: "[old=3]",
		},
		{
			name: "a stale status never counts more pods than the spec keeps",
			d:    rollingDeployment(3, "1", "0"),
			new:  rsState{name: "new", replicas: 2, available: 1},
			// Just scaled from 3 to 2; the status still reports 3 available.
			old:  []rsState{{name: "old", replicas: 2, available: 3}},
			want: "[]",
		},
		{
			name: "unavailable old pods go first, whatever the budget",
			d:    rollingDeployment(4, "1", "0"),
			new:  rsState{name: "new", replicas: 1, available: 0},
			old:  []rsState{{name: "old", replicas: 4, available: 2}},
			want: "[]", // 5 pods, min 4 available, 1 new unavailable: nothing may go
		},
		{
			name: "unavailable old pods are removed before available ones",
			d:    rollingDeployment(4, "2", "1"),
			new:  rsState{name: "new", replicas: 2, available: 0},
			old:  []rsState{{name: "old", replicas: 4, available: 3}},
			want: "[old=3]", // the unhealthy one goes; 3 available is the minimum
		},
		{
			name: "oldest first across several old ReplicaSets",
			d:    rollingDeployment(6, "0", "2"),
			new:  rsState{name: "new", replicas: 2, available: 2, age: 20},
			old:  []rsState{{name: "middle", replicas: 2, available: 2, age: 10}, {name: "oldest", replicas: 2, available: 2, age: 0}},
			want: "[oldest=0]", // 6 available, minimum 4: two may go, from the oldest
		},
		{
			name: "everything new is available: the old ones go",
			d:    rollingDeployment(3, "1", "0"),
			new:  rsState{name: "new", replicas: 3, available: 3},
			old:  []rsState{{name: "old", replicas: 1, available: 1}},
			want: "[old=0]",
		},
		{
			name: "no old ReplicaSets",
			d:    rollingDeployment(3, "1", "0"),
			new:  rsState{name: "new", replicas: 3, available: 3},
			want: "[]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planString(planOldScaleDown(tt.d, makeRS(tt.new), makeRSs(tt.old...))); got != tt.want {
				t.Errorf("planOldScaleDown = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestRollingUpdateNeverDropsBelowMinimum plays whole rolling updates step by
// step, with Pods becoming available at once or never, and checks the
// availability the plan allows at every step.
func TestRollingUpdateNeverDropsBelowMinimum(t *testing.T) {
	for _, params := range []struct {
		replicas           int32
		surge, unavailable string
	}{
		{3, "25%", "25%"}, {4, "1", "1"}, {5, "0", "2"}, {10, "30%", "20%"}, {1, "1", "0"}, {2, "0", "1"},
	} {
		t.Run(fmt.Sprintf("%d replicas, surge %s, unavailable %s", params.replicas, params.surge, params.unavailable), func(t *testing.T) {
			d := rollingDeployment(params.replicas, params.surge, params.unavailable)
			minAvailable := params.replicas - maxUnavailable(d)
			oldRS := makeRS(rsState{name: "old", replicas: params.replicas, available: params.replicas})
			newRS := makeRS(rsState{name: "new", age: 1})
			for step := 0; specReplicas(oldRS) > 0 || newRS.Status.AvailableReplicas < params.replicas; step++ {
				if step > 100 {
					t.Fatal("the rollout does not finish")
				}
				all := []*api.ReplicaSet{oldRS, newRS}
				if n := rollingNewReplicas(d, all, newRS); n != specReplicas(newRS) {
					newRS.Spec.Replicas = api.Ptr(n)
				} else {
					for _, target := range planOldScaleDown(d, newRS, []*api.ReplicaSet{oldRS}) {
						oldRS.Spec.Replicas = api.Ptr(target.replicas)
					}
				}
				// The ReplicaSet controllers act: old Pods go at once, new
				// ones become available at once.
				oldRS.Status.AvailableReplicas = min(oldRS.Status.AvailableReplicas, specReplicas(oldRS))
				newRS.Status.AvailableReplicas = specReplicas(newRS)
				if available := oldRS.Status.AvailableReplicas + newRS.Status.AvailableReplicas; available < minAvailable {
					t.Fatalf("step %d: %d available, below the minimum %d", step, available, minAvailable)
				}
				if total := specReplicas(oldRS) + specReplicas(newRS); total > params.replicas+maxSurge(d) {
					t.Fatalf("step %d: %d pods, above replicas+maxSurge %d", step, total, params.replicas+maxSurge(d))
				}
			}
		})
	}
}

func TestPlanScale(t *testing.T) {
	annotated := func(s rsState, desired, maxReplicas int32) *api.ReplicaSet {
		rs := makeRS(s)
		setReplicasAnnotations(rs, desired, maxReplicas)
		return rs
	}
	tests := []struct {
		name string
		d    *api.Deployment
		new  *api.ReplicaSet
		old  []*api.ReplicaSet
		want string
	}{
		{
			name: "one active ReplicaSet takes the new size",
			d:    rollingDeployment(5, "1", "0"),
			new:  annotated(rsState{name: "new", replicas: 3, available: 3}, 3, 4),
			old:  makeRSs(rsState{name: "old"}),
			want: "[new=5]",
		},
		{
			name: "no active ReplicaSet: the newest one grows",
			d:    rollingDeployment(2, "1", "0"),
			old:  makeRSs(rsState{name: "older", age: 0}, rsState{name: "newer", age: 5}),
			want: "[newer=2]",
		},
		{
			name: "a saturated new ReplicaSet: old ones go to zero",
			d:    rollingDeployment(3, "1", "0"),
			new:  annotated(rsState{name: "new", replicas: 3, available: 3}, 3, 4),
			old:  []*api.ReplicaSet{annotated(rsState{name: "old", replicas: 1, available: 1}, 3, 4)},
			want: "[old=0]",
		},
		{
			name: "mid-rollout scale-up is proportional",
			// 10 → 20 replicas with 25% surge: the allowed total goes from 13 to 25.
			d:    rollingDeployment(20, "25%", "25%"),
			new:  annotated(rsState{name: "new", replicas: 5, available: 0, age: 5}, 10, 13),
			old:  []*api.ReplicaSet{annotated(rsState{name: "old", replicas: 8, available: 8}, 10, 13)},
			want: "[old=15 new=10]",
		},
		{
			name: "mid-rollout scale-down is proportional",
			d:    rollingDeployment(5, "25%", "25%"),
			new:  annotated(rsState{name: "new", replicas: 5, available: 0, age: 5}, 10, 13),
			old:  []*api.ReplicaSet{annotated(rsState{name: "old", replicas: 8, available: 8}, 10, 13)},
			want: "[old=4 new=3]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planString(planScale(tt.d, tt.new, tt.old)); got != tt.want {
				t.Errorf("planScale = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestIsScalingEvent(t *testing.T) {
	d := rollingDeployment(5, "1", "0")
	rs := makeRS(rsState{name: "rs", replicas: 3})
	if isScalingEvent(d, []*api.ReplicaSet{rs}) {
		t.Error("a ReplicaSet without the annotation is a scaling event")
	}
	setReplicasAnnotations(rs, 3, 4)
	if !isScalingEvent(d, []*api.ReplicaSet{rs}) {
		t.Error("replicas 5 against a ReplicaSet sized for 3 is not a scaling event")
	}
	setReplicasAnnotations(rs, 5, 6)
	if isScalingEvent(d, []*api.ReplicaSet{rs}) {
		t.Error("a ReplicaSet sized for the current replicas is a scaling event")
	}
}

func TestReplicaSetsToDelete(t *testing.T) {
	old := makeRSs(
		rsState{name: "rev3", revision: 3, age: 3},
		rsState{name: "rev1", revision: 1, age: 1},
		rsState{name: "rev2-still-running", revision: 2, age: 2, replicas: 1},
		rsState{name: "rev4", revision: 4, age: 4},
	)
	d := rollingDeployment(3, "1", "0")
	d.Spec.RevisionHistoryLimit = api.Ptr[int32](1)
	var got []string
	for _, rs := range replicaSetsToDelete(d, old) {
		got = append(got, rs.Name)
	}
	// Three beyond the limit: the oldest revisions; the one still running stays.
	if want := []string{"rev1", "rev3"}; !slices.Equal(got, want) {
		t.Errorf("replicaSetsToDelete = %v, want %v", got, want)
	}
	d.Spec.RevisionHistoryLimit = nil
	if got := replicaSetsToDelete(d, old); got != nil {
		t.Errorf("without a limit it deletes %v", got)
	}
}

func TestStatusAndConditions(t *testing.T) {
	now := api.NewTime(t0)
	d := rollingDeployment(3, "1", "0")
	d.Generation = 2
	newRS := makeRS(rsState{name: "web-abc", replicas: 3, available: 3})
	oldRS := makeRS(rsState{name: "web-old", replicas: 0, available: 0})
	all := []*api.ReplicaSet{oldRS, newRS}

	status := calculateStatus(d, newRS, all, now)
	if status.Replicas != 3 || status.UpdatedReplicas != 3 || status.AvailableReplicas != 3 || status.UnavailableReplicas != 0 || status.ObservedGeneration != 2 {
		t.Errorf("status = %+v", status)
	}
	if c := getCondition(&status, api.DeploymentAvailable); c == nil || c.Status != api.ConditionTrue || c.Reason != ReasonMinimumReplicasAvailable {
		t.Errorf("Available condition = %+v", c)
	}

	applyRolloutProgress(d, newRS, &status, now)
	c := getCondition(&status, api.DeploymentProgressing)
	if c == nil || c.Status != api.ConditionTrue || c.Reason != ReasonNewReplicaSetAvailable ||
		c.Message != `ReplicaSet "web-abc" has successfully progressed.` {
		t.Errorf("Progressing condition = %+v", c)
	}

	// Mid-rollout: one new Pod more than recorded is progress.
	d.Status = api.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3}
	newRS = makeRS(rsState{name: "web-abc", replicas: 2, available: 1})
	oldRS = makeRS(rsState{name: "web-old", replicas: 2, available: 2})
	status = calculateStatus(d, newRS, []*api.ReplicaSet{oldRS, newRS}, now)
	if status.UpdatedReplicas != 1 || status.Replicas != 3 || status.UnavailableReplicas != 1 {
		t.Errorf("mid-rollout status = %+v", status)
	}
	applyRolloutProgress(d, newRS, &status, now)
	if c := getCondition(&status, api.DeploymentProgressing); c == nil || c.Reason != ReasonReplicaSetUpdated || c.Message != `ReplicaSet "web-abc" is progressing.` {
		t.Errorf("Progressing condition = %+v", c)
	}
	if c := getCondition(&status, api.DeploymentAvailable); c == nil || c.Status != api.ConditionTrue {
		t.Errorf("3 available of 3 with maxUnavailable 0: Available = %+v", c)
	}

	// No progress for longer than the deadline: timed out.
	d.Spec.ProgressDeadlineSeconds = api.Ptr[int32](60)
	d.Status = status
	later := api.NewTime(t0.Add(2 * time.Minute))
	stuck := calculateStatus(d, newRS, []*api.ReplicaSet{oldRS, newRS}, later)
	applyRolloutProgress(d, newRS, &stuck, later)
	if c := getCondition(&stuck, api.DeploymentProgressing); c == nil || c.Status != api.ConditionFalse || c.Reason != ReasonProgressDeadlineExceeded {
		t.Errorf("Progressing condition after the deadline = %+v", c)
	}
}

func TestSetConditionKeepsTransitionTime(t *testing.T) {
	var status api.DeploymentStatus
	first := api.NewTime(t0)
	setCondition(&status, newCondition(api.DeploymentAvailable, api.ConditionTrue, "A", "a", first))
	setCondition(&status, newCondition(api.DeploymentAvailable, api.ConditionTrue, "B", "b", api.NewTime(t0.Add(time.Hour))))
	c := getCondition(&status, api.DeploymentAvailable)
	if c.Reason != "B" || !c.LastTransitionTime.Equal(first.Time) || len(status.Conditions) != 1 {
		t.Errorf("condition = %+v; want reason B with the first transition time", c)
	}
}

func TestWriteTracker(t *testing.T) {
	now := t0
	w := newWriteTracker(func() time.Time { return now })
	generations := map[string]int64{}
	cached := func(name string) (int64, bool) { g, ok := generations[name]; return g, ok }

	w.record("default/web", "web-abc", 3)
	if w.caughtUp("default/web", cached) {
		t.Fatal("caught up while the ReplicaSet is not in the cache")
	}
	generations["web-abc"] = 2
	if w.caughtUp("default/web", cached) {
		t.Fatal("caught up with an older generation in the cache")
	}
	generations["web-abc"] = 3
	if !w.caughtUp("default/web", cached) {
		t.Fatal("not caught up once the cache shows the write")
	}

	w.record("default/web", "web-def", 1)
	now = now.Add(writeTimeout + time.Second)
	if !w.caughtUp("default/web", cached) {
		t.Fatal("a write never seen must stop blocking after the timeout")
	}
	w.record("default/web", "web-def", 1)
	w.forgetReplicaSet("default/web", "web-def")
	if !w.caughtUp("default/web", cached) {
		t.Fatal("a deleted ReplicaSet's write still blocks")
	}
}
