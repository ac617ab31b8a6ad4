package gc

import (
	"slices"

	"kubelite/api"
)

// OwnerState is what the collector found of one owner reference.
type OwnerState int

const (
	// OwnerExists: the owner is there and not being deleted in the foreground.
	OwnerExists OwnerState = iota
	// OwnerAbsent: no object with the owner's name and uid exists (confirmed
	// with the API server, not only the cache).
	OwnerAbsent
	// OwnerDeletingDependents: the owner is being deleted in the foreground
	// (foregroundDeletion finalizer) and waits for its dependents to go.
	OwnerDeletingDependents
	// OwnerUnresolvable: the owner's kind is not one kubelite serves. Such a
	// reference keeps its object, as Kubernetes keeps it.
	OwnerUnresolvable
)

// Action is what the collector does with an object.
type Action int

const (
	// Keep the object as it is.
	Keep Action = iota
	// RemoveReferences drops the references to gone or foreground-deleting
	// owners, because another owner still holds the object.
	RemoveReferences
	// DeleteBackground deletes the object; its own dependents follow later.
	DeleteBackground
	// DeleteForeground deletes the object after its own dependents, because
	// an owner waits for them in the foreground.
	DeleteForeground
)

func (a Action) String() string {
	switch a {
	case Keep:
		return "Keep"
	case RemoveReferences:
		return "RemoveReferences"
	case DeleteBackground:
		return "DeleteBackground"
	case DeleteForeground:
		return "DeleteForeground"
	}
	return "Unknown"
}

// Decision is an Action, with the owner uids to drop for RemoveReferences.
type Decision struct {
	Action     Action
	DropOwners []string
}

// Decide is Kubernetes' attemptToDeleteItem for an object that is not
// itself being deleted: given the state of each of its owners (by uid) and
// whether it has dependents of its own, it keeps the object, drops the
// references that no longer hold it, or deletes it.
//
//   - An object with at least one owner that still holds it is kept; its
//     references to absent owners and to owners deleting their dependents
//     are dropped.
//   - Otherwise, if an owner waits for its dependents in the foreground and
//     the object has dependents of its own, it is deleted in the foreground
//     too, so that the wait reaches down the whole chain.
//   - Otherwise it is deleted in the background.
func Decide(refs []api.OwnerReference, states map[string]OwnerState, hasDependents bool) Decision {
	if len(refs) == 0 {
		return Decision{Action: Keep}
	}
	var solid, dangling, waiting []string
	for _, ref := range refs {
		switch states[ref.UID] {
		case OwnerExists, OwnerUnresolvable:
			solid = append(solid, ref.UID)
		case OwnerAbsent:
			dangling = append(dangling, ref.UID)
		case OwnerDeletingDependents:
			waiting = append(waiting, ref.UID)
		}
	}
	switch {
	case len(solid) > 0:
		drop := slices.Concat(dangling, waiting)
		if len(drop) == 0 {
			return Decision{Action: Keep}
		}
		return Decision{Action: RemoveReferences, DropOwners: drop}
	case len(waiting) > 0 && hasDependents:
		return Decision{Action: DeleteForeground}
	default:
		return Decision{Action: DeleteBackground}
	}
}

// blocks reports whether dependent holds up the foreground deletion of the
// owner with uid ownerUID (its reference says blockOwnerDeletion).
func blocks(dependent *api.ObjectMeta, ownerUID string) bool {
	for _, ref := range dependent.OwnerReferences {
		if ref.UID == ownerUID && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
			return true
		}
	}
	return false
}

// ownedBy reports whether meta has an owner reference with uid ownerUID.
func ownedBy(meta *api.ObjectMeta, ownerUID string) bool {
	return slices.ContainsFunc(meta.OwnerReferences, func(ref api.OwnerReference) bool { return ref.UID == ownerUID })
}
