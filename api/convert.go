package api

import (
	"fmt"
	"maps"
)

// Older API versions of Deployments and ReplicaSets are still accepted on
// input (the tutorial writes apps/v1beta1) and converted to apps/v1, the one
// version kubelite stores and serves. Their documents differ from apps/v1 in
// little: the selector was optional, filled from the template's labels, and
// the v1beta1 versions had spec.rollbackTo.

// legacyForm describes one deprecated apiVersion of a kind.
type legacyForm struct {
	apiVersion   string
	kind         string
	deprecatedIn string // the Kubernetes release that deprecated it
	removedIn    string // the Kubernetes release that stopped serving it
	// hasRollbackTo: the version's DeploymentSpec had rollbackTo (a rollback
	// request, acted on once; kubelite accepts and drops it).
	hasRollbackTo bool
	// labelsFromTemplate: the version also gave an unlabelled object its
	// template's labels.
	labelsFromTemplate bool
}

var legacyForms = []legacyForm{
	{apiVersion: "apps/v1beta1", kind: "Deployment", deprecatedIn: "v1.9", removedIn: "v1.16", hasRollbackTo: true, labelsFromTemplate: true},
	{apiVersion: "apps/v1beta2", kind: "Deployment", deprecatedIn: "v1.9", removedIn: "v1.16"},
	{apiVersion: "extensions/v1beta1", kind: "Deployment", deprecatedIn: "v1.8", removedIn: "v1.16", hasRollbackTo: true, labelsFromTemplate: true},
	{apiVersion: "apps/v1beta2", kind: "ReplicaSet", deprecatedIn: "v1.9", removedIn: "v1.16"},
	{apiVersion: "extensions/v1beta1", kind: "ReplicaSet", deprecatedIn: "v1.8", removedIn: "v1.16", labelsFromTemplate: true},
}

// legacyFormOf finds the deprecated version apiVersion of kind, if it is one.
func legacyFormOf(apiVersion, kind string) *legacyForm {
	for i := range legacyForms {
		if legacyForms[i].apiVersion == apiVersion && legacyForms[i].kind == kind {
			return &legacyForms[i]
		}
	}
	return nil
}

// deprecationWarning is Kubernetes' warning for a request in this version:
// "apps/v1beta1 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment".
func (f *legacyForm) deprecationWarning(stored *Resource) string {
	return fmt.Sprintf("%s %s is deprecated in %s+, unavailable in %s+; use %s %s",
		f.apiVersion, f.kind, f.deprecatedIn, f.removedIn, stored.APIVersion(), stored.Kind)
}

// newObject returns an empty object in the shape of this version's documents.
func (f *legacyForm) newObject(stored *Resource) Object {
	if f.hasRollbackTo {
		return &deploymentV1beta1{}
	}
	return stored.New()
}

// toStored converts an object decoded in this version to the stored version.
func (f *legacyForm) toStored(obj Object) Object {
	switch o := obj.(type) {
	case *deploymentV1beta1:
		d := &Deployment{TypeMeta: o.TypeMeta, ObjectMeta: o.ObjectMeta, Spec: o.Spec.DeploymentSpec, Status: o.Status}
		f.defaultFromTemplate(&d.ObjectMeta, &d.Spec.Selector, d.Spec.Template.Labels)
		return d
	case *Deployment:
		f.defaultFromTemplate(&o.ObjectMeta, &o.Spec.Selector, o.Spec.Template.Labels)
	case *ReplicaSet:
		f.defaultFromTemplate(&o.ObjectMeta, &o.Spec.Selector, o.Spec.Template.Labels)
	}
	return obj
}

// defaultFromTemplate gives a missing selector (and, where the version did,
// missing labels) the template's labels, as the legacy versions' defaulting did.
func (f *legacyForm) defaultFromTemplate(meta *ObjectMeta, selector **LabelSelector, templateLabels map[string]string) {
	if len(templateLabels) == 0 {
		return
	}
	if *selector == nil {
		*selector = &LabelSelector{MatchLabels: maps.Clone(templateLabels)}
	}
	if f.labelsFromTemplate && len(meta.Labels) == 0 {
		meta.Labels = maps.Clone(templateLabels)
	}
}

// deploymentV1beta1 is a Deployment as apps/v1beta1 and extensions/v1beta1 wrote it.
type deploymentV1beta1 struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata,omitempty"`
	Spec       deploymentSpecV1beta1 `json:"spec,omitempty"`
	Status     DeploymentStatus      `json:"status,omitempty"`
}

// deploymentSpecV1beta1 is DeploymentSpec with the field apps/v1 removed.
type deploymentSpecV1beta1 struct {
	DeploymentSpec `json:",inline"`
	RollbackTo     *rollbackConfig `json:"rollbackTo,omitempty"`
}

// rollbackConfig asked for a rollback to a revision (0: the previous one).
type rollbackConfig struct {
	Revision int64 `json:"revision,omitempty"`
}
