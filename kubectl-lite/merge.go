package kubectl

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// lastAppliedAnnotation holds the manifest of the last apply, from which
// the next apply learns which fields the user removed.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// threeWayMergePatch computes the JSON merge patch of a client-side apply,
// as kubectl's CreateThreeWayJSONMergePatch does:
//
//   - every field of modified (the new manifest) that differs from current
//     (the live object) is set, so the manifest wins over changes made
//     behind its back;
//   - every field of original (the last applied manifest) that modified no
//     longer has is deleted (null);
//   - fields only the server or other clients set are left alone.
//
// Maps merge recursively; lists are replaced whole. An empty patch means
// nothing to change.
func threeWayMergePatch(original, modified, current map[string]any) map[string]any {
	changes := keepOrDeleteNulls(mergePatchDiff(current, modified), false)
	deletions := keepOrDeleteNulls(mergePatchDiff(original, modified), true)
	return mergePatches(deletions, changes)
}

// mergePatchDiff is the RFC 7386 merge patch that turns from into to.
func mergePatchDiff(from, to map[string]any) map[string]any {
	patch := map[string]any{}
	for key, toValue := range to {
		fromValue, ok := from[key]
		if !ok {
			patch[key] = toValue
			continue
		}
		fromMap, fromIsMap := fromValue.(map[string]any)
		toMap, toIsMap := toValue.(map[string]any)
		if fromIsMap && toIsMap {
			if sub := mergePatchDiff(fromMap, toMap); len(sub) > 0 {
				patch[key] = sub
			}
			continue
		}
		if !reflect.DeepEqual(fromValue, toValue) {
			patch[key] = toValue
		}
	}
	for key := range from {
		if _, ok := to[key]; !ok {
			patch[key] = nil
		}
	}
	return patch
}

// keepOrDeleteNulls keeps only the deletions (nulls) of a patch when
// keepNull is true, and only its additions and changes otherwise. An
// explicitly empty map in the patch is a value, not an empty sub-patch.
func keepOrDeleteNulls(patch map[string]any, keepNull bool) map[string]any {
	out := map[string]any{}
	for key, value := range patch {
		if value == nil {
			if keepNull {
				out[key] = nil
			}
			continue
		}
		sub, isMap := value.(map[string]any)
		switch {
		case isMap && len(sub) == 0:
			if !keepNull {
				out[key] = sub
			}
		case isMap:
			if filtered := keepOrDeleteNulls(sub, keepNull); len(filtered) > 0 {
				out[key] = filtered
			}
		default:
			if !keepNull {
				out[key] = value
			}
		}
	}
	return out
}

// mergePatches combines two patches; where both set a field, b wins, and
// maps set by both are combined recursively.
func mergePatches(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for key, value := range a {
		out[key] = value
	}
	for key, value := range b {
		aMap, aIsMap := out[key].(map[string]any)
		bMap, bIsMap := value.(map[string]any)
		if aIsMap && bIsMap {
			out[key] = mergePatches(aMap, bMap)
			continue
		}
		out[key] = value
	}
	return out
}

// applyMergePatch applies an RFC 7386 merge patch to target and returns
// the result; target is not modified.
func applyMergePatch(target, patch map[string]any) map[string]any {
	out := deepCopyJSON(target).(map[string]any)
	for key, value := range patch {
		if value == nil {
			delete(out, key)
			continue
		}
		patchMap, patchIsMap := value.(map[string]any)
		if !patchIsMap {
			out[key] = deepCopyJSON(value)
			continue
		}
		targetMap, targetIsMap := out[key].(map[string]any)
		if !targetIsMap {
			targetMap = map[string]any{}
		}
		out[key] = applyMergePatch(targetMap, patchMap)
	}
	return out
}

// deepCopyJSON copies a decoded JSON value (maps, slices, scalars).
func deepCopyJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for key, value := range v {
			out[key] = deepCopyJSON(value)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, value := range v {
			out[i] = deepCopyJSON(value)
		}
		return out
	default:
		return v
	}
}

// annotations returns the metadata.annotations map of obj, creating it
// (and metadata) when create is set.
func annotations(obj map[string]any, create bool) map[string]any {
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		if !create {
			return nil
		}
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	ann, _ := meta["annotations"].(map[string]any)
	if ann == nil && create {
		ann = map[string]any{}
		meta["annotations"] = ann
	}
	return ann
}

// withLastApplied returns manifest with the last-applied annotation set to
// manifest itself (without that annotation), as kubectl stores it: compact
// JSON with sorted keys and a final newline.
func withLastApplied(manifest map[string]any) (map[string]any, error) {
	bare := deepCopyJSON(manifest).(map[string]any)
	if ann := annotations(bare, false); ann != nil {
		delete(ann, lastAppliedAnnotation)
		if len(ann) == 0 {
			delete(bare["metadata"].(map[string]any), "annotations")
		}
	}
	data, err := json.Marshal(bare)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", lastAppliedAnnotation, err)
	}
	out := deepCopyJSON(manifest).(map[string]any)
	annotations(out, true)[lastAppliedAnnotation] = string(data) + "\n"
	return out, nil
}

// lastApplied decodes the last-applied annotation of a live object; an
// object never applied has none (an empty original).
func lastApplied(live map[string]any) (map[string]any, error) {
	value, _ := annotations(live, false)[lastAppliedAnnotation].(string)
	if value == "" {
		return map[string]any{}, nil
	}
	obj, err := decodeJSONObject([]byte(value))
	if err != nil {
		return nil, fmt.Errorf("decoding the %s annotation: %w", lastAppliedAnnotation, err)
	}
	return obj, nil
}
