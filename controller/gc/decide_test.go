package gc

import (
	"slices"
	"testing"

	"kubelite/api"
)

func TestDecide(t *testing.T) {
	refs := func(uids ...string) []api.OwnerReference {
		var out []api.OwnerReference
		for _, uid := range uids {
			out = append(out, api.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs-" + uid, UID: uid})
		}
		return out
	}
	tests := []struct {
		name          string
		refs          []api.OwnerReference
		states        map[string]OwnerState
		hasDependents bool
		want          Decision
	}{
		{name: "no owners", want: Decision{Action: Keep}},
		{
			name:   "the owner exists",
			refs:   refs("a"),
			states: map[string]OwnerState{"a": OwnerExists},
			want:   Decision{Action: Keep},
		},
		{
			name:   "the only owner is gone",
			refs:   refs("a"),
			states: map[string]OwnerState{"a": OwnerAbsent},
			want:   Decision{Action: DeleteBackground},
		},
		{
			name:   "every owner is gone",
			refs:   refs("a", "b"),
			states: map[string]OwnerState{"a": OwnerAbsent, "b": OwnerAbsent},
			want:   Decision{Action: DeleteBackground},
		},
		{
			name:   "one owner left holds it; the reference to the gone one is dropped",
			refs:   refs("a", "b"),
			states: map[string]OwnerState{"a": OwnerAbsent, "b": OwnerExists},
			want:   Decision{Action: RemoveReferences, DropOwners: []string{"a"}},
		},
		{
			name:   "an owner deleting in the foreground is let go by an object another owner holds",
			refs:   refs("a", "b", "c"),
			states: map[string]OwnerState{"a": OwnerDeletingDependents, "b": OwnerExists, "c": OwnerAbsent},
			want:   Decision{Action: RemoveReferences, DropOwners: []string{"c", "a"}},
		},
		{
			name:          "an owner deleting in the foreground, and dependents of its own: foreground",
			refs:          refs("a"),
			states:        map[string]OwnerState{"a": OwnerDeletingDependents},
			hasDependents: true,
			want:          Decision{Action: DeleteForeground},
		},
		{
			name:   "an owner deleting in the foreground, no dependents of its own: background",
			refs:   refs("a"),
			states: map[string]OwnerState{"a": OwnerDeletingDependents},
			want:   Decision{Action: DeleteBackground},
		},
		{
			name:   "an owner of an unknown kind keeps the object",
			refs:   refs("a", "b"),
			states: map[string]OwnerState{"a": OwnerUnresolvable, "b": OwnerAbsent},
			want:   Decision{Action: RemoveReferences, DropOwners: []string{"b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.refs, tt.states, tt.hasDependents)
			if got.Action != tt.want.Action || !slices.Equal(got.DropOwners, tt.want.DropOwners) {
				t.Errorf("Decide = %v %v, want %v %v", got.Action, got.DropOwners, tt.want.Action, tt.want.DropOwners)
			}
		})
	}
}

func TestBlocks(t *testing.T) {
	meta := &api.ObjectMeta{OwnerReferences: []api.OwnerReference{
		{UID: "blocking", BlockOwnerDeletion: api.Ptr(true)},
		{UID: "not-blocking", BlockOwnerDeletion: api.Ptr(false)},
		{UID: "unset"},
	}}
	for uid, want := range map[string]bool{"blocking": true, "not-blocking": false, "unset": false, "other": false} {
		if got := blocks(meta, uid); got != want {
			t.Errorf("blocks(%s) = %v, want %v", uid, got, want)
		}
	}
}
