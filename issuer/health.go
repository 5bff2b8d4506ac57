// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// HealthReconciler keeps an issuer kind's Ready condition true to Vault:
// reachable and unsealed, login working, sign path writable. It re-checks
// every Period while Ready, and with exponential backoff (the controller's
// rate limiter) while not.
type HealthReconciler struct {
	// Client reads issuers and patches their status.
	Client ctrl.Client
	// NewIssuer returns an empty object of the kind reconciled.
	NewIssuer func() v1alpha1.GenericIssuer
	// Vaults checks Vault for an issuer.
	Vaults Vaults
	// Clock stamps condition transitions.
	Clock clock.PassiveClock
	// Recorder receives an event on every Ready transition.
	Recorder events.EventRecorder
	// Period is the re-check interval of a Ready issuer.
	Period time.Duration
	// Timeout bounds one check.
	Timeout time.Duration
	// FieldOwner names Keyward in managedFields.
	FieldOwner string

	metrics *metrics
}

// Reconcile implements reconcile.Reconciler.
func (r *HealthReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	iss := r.NewIssuer()
	if err := r.Client.Get(ctx, req.NamespacedName, iss); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req, iss)
			return reconcile.Result{}, nil // done: the issuer is gone
		}
		return reconcile.Result{}, fmt.Errorf("reading %s %s: %w", iss.IssuerKind(), req.NamespacedName, err)
	}
	orig := iss.DeepCopyObject().(v1alpha1.GenericIssuer)

	cctx, cancel := context.WithTimeout(ctx, r.Timeout)
	checkErr := r.Vaults.Check(cctx, iss)
	cancel()
	status, reason, message := healthCondition(iss, checkErr)
	setIssuerReady(iss, status, reason, message, metav1.NewTime(r.Clock.Now()))
	r.metrics.ready.WithLabelValues(metricLabel(iss)).Set(boolGauge(status == metav1.ConditionTrue))

	if err := r.patchStatus(ctx, orig, iss); err != nil {
		return reconcile.Result{}, err
	}
	if checkErr != nil {
		logf.FromContext(ctx).V(1).Info("issuer not ready", "reason", reason, "message", message)
		// Requeue with backoff: the rate limiter doubles the delay up to Period.
		return reconcile.Result{}, fmt.Errorf("%s not ready: %s", issuerName(iss), message)
	}
	return reconcile.Result{RequeueAfter: r.Period}, nil // done; re-check later
}

// healthCondition maps a Check result to the Ready condition.
func healthCondition(iss v1alpha1.GenericIssuer, err error) (metav1.ConditionStatus, string, string) {
	if err == nil {
		return metav1.ConditionTrue, ReasonVerified, fmt.Sprintf("Vault %s is unsealed and the issuer may sign with %s", iss.IssuerSpec().Server, iss.IssuerSpec().Path)
	}
	var (
		health *vault.HealthError
		ie     *IssuerError
	)
	switch {
	case errors.As(err, &health):
		if health.Reason == ReasonVaultUnreachable && isTLSVerification(err) {
			return metav1.ConditionFalse, ReasonTLSUntrusted, err.Error()
		}
		return metav1.ConditionFalse, health.Reason, err.Error()
	case errors.As(err, &ie):
		return metav1.ConditionFalse, ie.Reason, err.Error()
	}
	switch c := classify(err).(type) {
	case *IssuerError:
		return metav1.ConditionFalse, c.Reason, err.Error()
	case *PermanentError:
		return metav1.ConditionFalse, ReasonVaultError, err.Error()
	}
	if vault.StatusCode(err) == 0 {
		return metav1.ConditionFalse, ReasonVaultUnreachable, err.Error()
	}
	return metav1.ConditionFalse, ReasonVaultError, err.Error()
}

// patchStatus writes the issuer's status if it changed, and emits an event
// when Ready changed.
func (r *HealthReconciler) patchStatus(ctx context.Context, orig, iss v1alpha1.GenericIssuer) error {
	if equality.Semantic.DeepEqual(orig.IssuerStatus(), iss.IssuerStatus()) {
		return nil
	}
	if err := patchIssuerStatus(ctx, r.Client, orig, iss, r.FieldOwner); err != nil {
		return err
	}
	_, before := issuerReady(orig)
	ready, after := issuerReady(iss)
	if after != nil && (before == nil || before.Status != after.Status || before.Reason != after.Reason) {
		typ := corev1.EventTypeNormal
		if !ready {
			typ = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(iss, nil, typ, after.Reason, "CheckVault", "%s", after.Message)
	}
	return nil
}

func (r *HealthReconciler) forget(req reconcile.Request, iss v1alpha1.GenericIssuer) {
	iss.SetNamespace(req.Namespace)
	iss.SetName(req.Name)
	r.metrics.ready.DeleteLabelValues(metricLabel(iss))
	r.Vaults.Forget(iss)
}

// patchIssuerStatus merge-patches the status subresource with an optimistic
// lock, so a concurrent writer (the other reconciler) is never overwritten.
func patchIssuerStatus(ctx context.Context, c ctrl.Client, orig, iss v1alpha1.GenericIssuer, owner string) error {
	patch := ctrl.MergeFromWithOptions(orig, ctrl.MergeFromWithOptimisticLock{})
	if err := c.Status().Patch(ctx, iss, patch, ctrl.FieldOwner(owner)); err != nil {
		return fmt.Errorf("patching status of %s: %w", issuerName(iss), err)
	}
	return nil
}

// metricLabel is the issuer label value: "<kind>/<namespace>/<name>" or
// "<kind>/<name>", kind in lower case.
func metricLabel(iss v1alpha1.GenericIssuer) string {
	kind := strings.ToLower(iss.IssuerKind())
	if iss.GetNamespace() == "" {
		return kind + "/" + iss.GetName()
	}
	return kind + "/" + iss.GetNamespace() + "/" + iss.GetName()
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
