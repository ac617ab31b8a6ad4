package api

import "strings"

// Validation of Deployments and ReplicaSets (apps/v1).

func validateDeployment(d *Deployment) FieldErrors {
	errs := validateObjectMeta(&d.ObjectMeta, "Deployment", IsDNS1123Subdomain)
	spec := &d.Spec
	p := fieldPath("spec")
	if r := spec.Replicas; r != nil && *r < 0 {
		errs = append(errs, invalid(p.Child("replicas"), *r, isNegativeMsg))
	}
	errs = append(errs, validateSelectorAndTemplate(spec.Selector, &spec.Template, p, "deployment")...)
	errs = append(errs, validateDeploymentStrategy(&spec.Strategy, p.Child("strategy"))...)
	if r := spec.RevisionHistoryLimit; r != nil && *r < 0 {
		errs = append(errs, invalid(p.Child("revisionHistoryLimit"), *r, isNegativeMsg))
	}
	if spec.MinReadySeconds < 0 {
		errs = append(errs, invalid(p.Child("minReadySeconds"), spec.MinReadySeconds, isNegativeMsg))
	}
	if pd := spec.ProgressDeadlineSeconds; pd != nil {
		if *pd < 0 {
			errs = append(errs, invalid(p.Child("progressDeadlineSeconds"), *pd, isNegativeMsg))
		} else if *pd <= spec.MinReadySeconds {
			errs = append(errs, invalid(p.Child("progressDeadlineSeconds"), *pd, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

func validateReplicaSet(rs *ReplicaSet) FieldErrors {
	errs := validateObjectMeta(&rs.ObjectMeta, "ReplicaSet", IsDNS1123Subdomain)
	spec := &rs.Spec
	p := fieldPath("spec")
	if r := spec.Replicas; r != nil && *r < 0 {
		errs = append(errs, invalid(p.Child("replicas"), *r, isNegativeMsg))
	}
	if spec.MinReadySeconds < 0 {
		errs = append(errs, invalid(p.Child("minReadySeconds"), spec.MinReadySeconds, isNegativeMsg))
	}
	return append(errs, validateSelectorAndTemplate(spec.Selector, &spec.Template, p, "replicaset")...)
}

// validateSelectorAndTemplate checks what a controller of Pods needs: a
// non-empty selector that selects its own template, and a template whose
// Pods restart forever.
func validateSelectorAndTemplate(sel *LabelSelector, template *PodTemplateSpec, p fieldPath, kind string) FieldErrors {
	var errs FieldErrors
	sp := p.Child("selector")
	if sel == nil {
		errs = append(errs, required(sp, ""))
	} else {
		errs = append(errs, validateLabelSelector(sel, sp)...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			errs = append(errs, invalid(sp, goSyntax{*sel}, "empty selector is invalid for "+kind))
		}
	}
	selector, err := LabelSelectorAsSelector(sel)
	if err != nil {
		return append(errs, invalid(sp, goSyntax{*sel}, "invalid label selector"))
	}

	tp := p.Child("template")
	// A missing selector selects nothing, so it does not match the template either.
	if !selector.Empty() && !selector.Matches(template.Labels) {
		errs = append(errs, invalid(tp.Child("metadata", "labels"), goSyntax{template.Labels}, "`selector` does not match template `labels`"))
	}
	errs = append(errs, validateLabels(template.Labels, tp.Child("metadata", "labels"))...)
	errs = append(errs, validateAnnotations(template.Annotations, tp.Child("metadata", "annotations"))...)
	errs = append(errs, validatePodSpec(&template.Spec, tp.Child("spec"))...)
	if template.Spec.RestartPolicy != RestartAlways {
		errs = append(errs, notSupported(tp.Child("spec", "restartPolicy"), template.Spec.RestartPolicy, RestartAlways))
	}
	if template.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicaSet is not Supported"))
	}
	return errs
}

// validateLabelSelector checks matchLabels and matchExpressions.
func validateLabelSelector(sel *LabelSelector, p fieldPath) FieldErrors {
	var errs FieldErrors
	for i, req := range sel.MatchExpressions {
		rp := p.Child("matchExpressions").Index(i)
		switch req.Operator {
		case SelectorOpIn, SelectorOpNotIn:
			if len(req.Values) == 0 {
				errs = append(errs, required(rp.Child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
			}
		case SelectorOpExists, SelectorOpDoesNotExist:
			if len(req.Values) > 0 {
				errs = append(errs, forbidden(rp.Child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
			}
		default:
			errs = append(errs, invalid(rp.Child("operator"), req.Operator, "not a valid selector operator"))
		}
		for _, msg := range IsQualifiedName(req.Key) {
			errs = append(errs, invalid(rp.Child("key"), req.Key, msg))
		}
		for j, v := range req.Values {
			for _, msg := range IsValidLabelValue(v) {
				errs = append(errs, invalid(rp.Child("values").Index(j), v, msg))
			}
		}
	}
	return append(errs, validateLabels(sel.MatchLabels, p.Child("matchLabels"))...)
}

func validateDeploymentStrategy(strategy *DeploymentStrategy, p fieldPath) FieldErrors {
	switch strategy.Type {
	case RecreateStrategy:
		if strategy.RollingUpdate != nil {
			return FieldErrors{forbidden(p.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")}
		}
	case RollingUpdateStrategy:
		if strategy.RollingUpdate == nil {
			return FieldErrors{required(p.Child("rollingUpdate"), "this should be defaulted and never be nil")}
		}
		return validateRollingUpdate(strategy.RollingUpdate, p.Child("rollingUpdate"))
	case "":
		return FieldErrors{required(p.Child("type"), "")}
	default:
		return FieldErrors{notSupported(p.Child("type"), strategy.Type, RecreateStrategy, RollingUpdateStrategy)}
	}
	return nil
}

// validateRollingUpdate checks maxSurge and maxUnavailable: numbers ≥ 0 or
// percentages, not both zero (the rollout could never progress), and at most
// 100% unavailable. As in Kubernetes, maxSurge may exceed 100%.
func validateRollingUpdate(ru *RollingUpdateDeployment, p fieldPath) FieldErrors {
	var errs FieldErrors
	errs = append(errs, validateIntOrPercent(ru.MaxUnavailable, p.Child("maxUnavailable"))...)
	errs = append(errs, validateIntOrPercent(ru.MaxSurge, p.Child("maxSurge"))...)
	if intOrPercentValue(ru.MaxUnavailable) == 0 && intOrPercentValue(ru.MaxSurge) == 0 {
		var value any = 0
		if ru.MaxUnavailable != nil {
			value = *ru.MaxUnavailable
		}
		errs = append(errs, invalid(p.Child("maxUnavailable"), value, "may not be 0 when `maxSurge` is 0"))
	}
	if v := ru.MaxUnavailable; v != nil && v.IsString && intOrPercentValue(v) > 100 {
		errs = append(errs, invalid(p.Child("maxUnavailable"), v.StrVal, "must not be greater than 100%"))
	}
	return errs
}

func validateIntOrPercent(v *IntOrString, p fieldPath) FieldErrors {
	if v == nil {
		return nil
	}
	var errs FieldErrors
	if v.IsString {
		for _, msg := range isValidPercent(v.StrVal) {
			errs = append(errs, invalid(p, *v, msg))
		}
	} else if v.IntVal < 0 {
		errs = append(errs, invalid(p, v.IntVal, isNegativeMsg))
	}
	return errs
}

// intOrPercentValue is the number in 3 or "25%"; 0 when absent or malformed.
func intOrPercentValue(v *IntOrString) int {
	if v == nil {
		return 0
	}
	if !v.IsString {
		return int(v.IntVal)
	}
	if len(isValidPercent(v.StrVal)) > 0 {
		return 0
	}
	n := 0
	for _, digit := range strings.TrimSuffix(v.StrVal, "%") {
		n = n*10 + int(digit-'0')
		if n > 1000 {
			break // large enough to be over 100%, and no overflow
		}
	}
	return n
}

// validateSelectorUpdate keeps a controller's selector fixed (apps/v1):
// changing it would orphan the Pods it already owns.
func validateSelectorUpdate(newSel, oldSel *LabelSelector) FieldErrors {
	if jsonEqual(newSel, oldSel) {
		return nil
	}
	var value any
	if newSel != nil {
		value = goSyntax{*newSel}
	}
	return FieldErrors{invalid("spec.selector", value, fieldImmutableMsg)}
}
