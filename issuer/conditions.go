// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// issuerName is how an issuer appears in messages and metric labels:
// "VaultIssuer ns/name" or "VaultClusterIssuer name".
func issuerName(iss v1alpha1.GenericIssuer) string {
	if iss.GetNamespace() == "" {
		return iss.IssuerKind() + " " + iss.GetName()
	}
	return iss.IssuerKind() + " " + iss.GetNamespace() + "/" + iss.GetName()
}

// setIssuerReady sets the issuer's Ready condition for its current
// generation. lastTransitionTime changes only when the status does.
func setIssuerReady(iss v1alpha1.GenericIssuer, status metav1.ConditionStatus, reason, message string, now metav1.Time) {
	cond := metav1.Condition{
		Type:               v1alpha1.ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: iss.GetGeneration(),
		LastTransitionTime: now,
	}
	meta.SetStatusCondition(&iss.IssuerStatus().Conditions, cond)
}

// issuerReady reports whether the issuer's Ready condition is True for its
// current generation, and the condition (nil when absent).
func issuerReady(iss v1alpha1.GenericIssuer) (bool, *metav1.Condition) {
	c := meta.FindStatusCondition(iss.IssuerStatus().Conditions, v1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == iss.GetGeneration(), c
}

// setRequestReady sets a CertificateRequest's Ready condition, keeping
// lastTransitionTime when the status does not change.
func setRequestReady(cr *cmapi.CertificateRequest, status cmmeta.ConditionStatus, reason, message string, now metav1.Time) {
	c := cmapi.CertificateRequestCondition{
		Type:               cmapi.CertificateRequestConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            message,
		LastTransitionTime: &now,
	}
	for i := range cr.Status.Conditions {
		old := &cr.Status.Conditions[i]
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status && old.LastTransitionTime != nil {
			c.LastTransitionTime = old.LastTransitionTime
		}
		*old = c
		return
	}
	cr.Status.Conditions = append(cr.Status.Conditions, c)
}

// requestReady returns the request's Ready condition, or nil.
func requestReady(cr *cmapi.CertificateRequest) *cmapi.CertificateRequestCondition {
	for i := range cr.Status.Conditions {
		if cr.Status.Conditions[i].Type == cmapi.CertificateRequestConditionReady {
			return &cr.Status.Conditions[i]
		}
	}
	return nil
}
