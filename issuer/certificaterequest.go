// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/issuer/keypolicy"
	"github.com/keyward-io/keyward/issuer/pki"
)

// CertificateRequestReconciler signs approved CertificateRequests whose
// issuerRef names a VaultIssuer or VaultClusterIssuer, following
// cert-manager's external issuer contract: it never approves, fails denied
// requests, and never signs a request twice.
type CertificateRequestReconciler struct {
	// Client reads requests and issuers and patches their status.
	Client ctrl.Client
	// Vaults signs for an issuer.
	Vaults Vaults
	// Clock stamps conditions and failure times and bounds retries.
	Clock clock.PassiveClock
	// Recorder receives events on the request.
	Recorder events.EventRecorder
	// SignTimeout bounds one Vault sign call (login included).
	SignTimeout time.Duration
	// MaxRetryDuration is how long after creation a request keeps being
	// retried on transient errors before it is failed.
	MaxRetryDuration time.Duration
	// PendingRequeue is when a Pending request is looked at again even if
	// no issuer event arrives.
	PendingRequeue time.Duration
	// FieldOwner names Keyward in managedFields.
	FieldOwner string

	metrics *metrics
}

// Reconcile implements reconcile.Reconciler.
func (r *CertificateRequestReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cr := &cmapi.CertificateRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, cr); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil // done: deleted
		}
		return reconcile.Result{}, fmt.Errorf("reading certificaterequest %s: %w", req.NamespacedName, err)
	}
	if !isOurs(cr) || isFinished(cr) {
		return reconcile.Result{}, nil // done: not ours, or nothing left to do
	}
	orig := cr.DeepCopy()
	res, issuerPatch, err := r.reconcileRequest(ctx, cr)
	if !equality.Semantic.DeepEqual(orig.Status, cr.Status) {
		patch := ctrl.MergeFromWithOptions(orig, ctrl.MergeFromWithOptimisticLock{})
		if perr := r.Client.Status().Patch(ctx, cr, patch, ctrl.FieldOwner(r.FieldOwner)); perr != nil {
			// A conflict means someone (the approver) changed the request:
			// the resulting event re-queues it, and signing is idempotent
			// because an issued request is never signed again.
			return reconcile.Result{}, fmt.Errorf("patching status of certificaterequest %s: %w", req.NamespacedName, perr)
		}
	}
	if issuerPatch != nil {
		if perr := r.markIssuerNotReady(ctx, issuerPatch); perr != nil {
			logf.FromContext(ctx).Error(perr, "marking issuer not ready")
		}
	}
	return res, err
}

// issuerFailure is the issuer Ready=False a request's signing revealed.
type issuerFailure struct {
	issuer v1alpha1.GenericIssuer
	err    *IssuerError
}

// reconcileRequest updates cr.Status and says when to look again. It returns
// a non-nil issuerFailure when the issuer must be marked not Ready.
func (r *CertificateRequestReconciler) reconcileRequest(ctx context.Context, cr *cmapi.CertificateRequest) (reconcile.Result, *issuerFailure, error) {
	now := metav1.NewTime(r.Clock.Now())
	log := logf.FromContext(ctx)

	if apiutil.CertificateRequestIsDenied(cr) {
		setRequestReady(cr, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonDenied, "The CertificateRequest was denied by an approval controller", now)
		cr.Status.FailureTime = &now
		log.V(1).Info("request denied; not signing")
		return reconcile.Result{}, nil, nil // done: denied requests are final
	}
	if !apiutil.CertificateRequestIsApproved(cr) {
		// No status write, as cert-manager's own issuers: a "waiting for
		// approval" condition would be one more write and one more event
		// for every controller watching requests, on every issuance (the
		// approver usually acts within milliseconds). Approval (or denial)
		// changes the request, which re-queues it.
		log.V(1).Info("request not approved yet; waiting")
		return reconcile.Result{}, nil, nil
	}

	iss, err := r.issuerFor(ctx, cr)
	if err != nil {
		var pending *PendingError
		if errors.As(err, &pending) {
			setRequestReady(cr, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonPending, err.Error(), now)
			return reconcile.Result{RequeueAfter: r.PendingRequeue}, nil, nil // pending: issuer events also re-queue
		}
		return reconcile.Result{}, nil, err // retry with backoff
	}

	sreq, err := r.signRequest(cr, iss)
	if err == nil {
		var b *pki.Bundle
		b, err = r.sign(ctx, iss, sreq)
		if err == nil {
			cr.Status.Certificate = b.Chain
			cr.Status.CA = b.CA
			setRequestReady(cr, cmmeta.ConditionTrue, cmapi.CertificateRequestReasonIssued, fmt.Sprintf("Certificate issued by %s", issuerName(iss)), now)
			r.Recorder.Eventf(cr, nil, corev1.EventTypeNormal, cmapi.CertificateRequestReasonIssued, "Sign", "Certificate (serial %s) issued by %s", b.Serial, issuerName(iss))
			return reconcile.Result{}, nil, nil // done
		}
	}
	return r.handleFailure(ctx, cr, iss, err, now)
}

// handleFailure applies an error class to the request.
func (r *CertificateRequestReconciler) handleFailure(ctx context.Context, cr *cmapi.CertificateRequest, iss v1alpha1.GenericIssuer, err error, now metav1.Time) (reconcile.Result, *issuerFailure, error) {
	var (
		perm *PermanentError
		ie   *IssuerError
	)
	switch c := classify(err); {
	case errors.As(c, &perm):
		r.fail(cr, perm.Reason, perm.Error(), now)
		return reconcile.Result{}, nil, nil // done: failed for good
	case errors.As(c, &ie):
		msg := fmt.Sprintf("%s is not ready: %s", issuerName(iss), ie.Error())
		setRequestReady(cr, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonPending, msg, now)
		return reconcile.Result{RequeueAfter: r.PendingRequeue}, &issuerFailure{issuer: iss, err: ie}, nil // pending until the issuer recovers
	default:
		if age := now.Sub(cr.CreationTimestamp.Time); age > r.MaxRetryDuration {
			r.fail(cr, ReasonRetriesExceeded, fmt.Sprintf("giving up after %s of retries: %v", age.Round(time.Second), err), now)
			return reconcile.Result{}, nil, nil // done: retry budget spent
		}
		setRequestReady(cr, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonPending, fmt.Sprintf("Retrying after a transient error: %v", err), now)
		logf.FromContext(ctx).V(1).Info("transient signing error; retrying", "error", err.Error())
		var failure *issuerFailure
		if vault.StatusCode(err) == 0 {
			// No answer from Vault at all (refused, reset, timed out): the
			// issuer is not usable until its health check reaches Vault
			// again; requests wait for that instead of each timing out.
			failure = &issuerFailure{issuer: iss, err: &IssuerError{Reason: ReasonVaultUnreachable,
				Err: fmt.Errorf("signing with Vault %s got no answer: %w", iss.IssuerSpec().Server, err)}}
		}
		return reconcile.Result{}, failure, fmt.Errorf("signing certificaterequest %s/%s: %w", cr.Namespace, cr.Name, err) // retry with backoff
	}
}

func (r *CertificateRequestReconciler) fail(cr *cmapi.CertificateRequest, reason, msg string, now metav1.Time) {
	setRequestReady(cr, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonFailed, msg, now)
	cr.Status.FailureTime = &now
	r.Recorder.Eventf(cr, nil, corev1.EventTypeWarning, reason, "Sign", "%s", msg)
}

// issuerFor loads the referenced issuer; a missing or not-Ready issuer is a
// *PendingError.
func (r *CertificateRequestReconciler) issuerFor(ctx context.Context, cr *cmapi.CertificateRequest) (v1alpha1.GenericIssuer, error) {
	var (
		iss v1alpha1.GenericIssuer
		key = types.NamespacedName{Name: cr.Spec.IssuerRef.Name}
	)
	if cr.Spec.IssuerRef.Kind == v1alpha1.VaultClusterIssuerKind {
		iss = &v1alpha1.VaultClusterIssuer{}
	} else {
		iss, key.Namespace = &v1alpha1.VaultIssuer{}, cr.Namespace
	}
	// "VaultClusterIssuer name" or "VaultIssuer ns/name", as issuerName
	// writes them (key.String() would give a cluster issuer a leading "/").
	ref := cr.Spec.IssuerRef.Kind + " " + key.Name
	if key.Namespace != "" {
		ref = cr.Spec.IssuerRef.Kind + " " + key.String()
	}
	if err := r.Client.Get(ctx, key, iss); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &PendingError{Err: fmt.Errorf("%s not found", ref)}
		}
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	if ok, cond := issuerReady(iss); !ok {
		why := "its Ready condition is not set yet"
		if cond != nil {
			why = fmt.Sprintf("%s: %s", cond.Reason, cond.Message)
		}
		return nil, &PendingError{Err: fmt.Errorf("%s is not ready: %s", issuerName(iss), why)}
	}
	return iss, nil
}

// signRequest checks the CSR against the issuer's key policy and maps it to
// Vault's sign parameters. Failures are permanent.
func (r *CertificateRequestReconciler) signRequest(cr *cmapi.CertificateRequest, iss v1alpha1.GenericIssuer) (pki.Request, error) {
	csr, err := pki.ParseCSR(cr.Spec.Request)
	if err != nil {
		return pki.Request{}, &PermanentError{Reason: ReasonInvalidRequest, Err: err}
	}
	var duration time.Duration
	if cr.Spec.Duration != nil {
		duration = cr.Spec.Duration.Duration
	}
	policy := keypolicy.FromAPI(iss.IssuerSpec().Policy)
	if err := policy.Check(csr, duration); err != nil {
		return pki.Request{}, &PermanentError{Reason: ReasonPolicyViolation, Err: err}
	}
	if duration == 0 {
		duration = policy.MaxDuration // zero when unlimited: the role's default applies
	}
	return pki.RequestFromCSR(cr.Spec.Request, csr, duration), nil
}

// sign calls Vault, recording latency and outcome.
func (r *CertificateRequestReconciler) sign(ctx context.Context, iss v1alpha1.GenericIssuer, req pki.Request) (*pki.Bundle, error) {
	ctx, cancel := context.WithTimeout(ctx, r.SignTimeout)
	defer cancel()
	label := metricLabel(iss)
	start := r.Clock.Now()
	b, err := func() (*pki.Bundle, error) {
		s, err := r.Vaults.Signer(ctx, iss)
		if err != nil {
			return nil, err
		}
		return s.Sign(ctx, req)
	}()
	r.metrics.signDuration.WithLabelValues(label).Observe(r.Clock.Since(start).Seconds())
	r.metrics.signTotal.WithLabelValues(label, signResult(err)).Inc()
	return b, err
}

func signResult(err error) string {
	var (
		perm *PermanentError
		ie   *IssuerError
	)
	switch c := classify(err); {
	case c == nil:
		return resultSuccess
	case errors.As(c, &perm):
		return resultPermanent
	case errors.As(c, &ie):
		return resultIssuer
	}
	return resultRetry
}

// markIssuerNotReady records on the issuer what signing found out; the
// health reconciler re-checks it on its own schedule.
func (r *CertificateRequestReconciler) markIssuerNotReady(ctx context.Context, f *issuerFailure) error {
	orig := f.issuer.DeepCopyObject().(v1alpha1.GenericIssuer)
	setIssuerReady(f.issuer, metav1.ConditionFalse, f.err.Reason, f.err.Error(), metav1.NewTime(r.Clock.Now()))
	if equality.Semantic.DeepEqual(orig.IssuerStatus(), f.issuer.IssuerStatus()) {
		return nil
	}
	r.metrics.ready.WithLabelValues(metricLabel(f.issuer)).Set(0)
	if err := patchIssuerStatus(ctx, r.Client, orig, f.issuer, r.FieldOwner); err != nil {
		return err
	}
	r.Recorder.Eventf(f.issuer, nil, corev1.EventTypeWarning, f.err.Reason, "Sign", "%s", f.err.Error())
	return nil
}

// isOurs reports whether the request names one of Keyward's issuer kinds.
func isOurs(cr *cmapi.CertificateRequest) bool {
	ref := cr.Spec.IssuerRef
	return ref.Group == v1alpha1.GroupName &&
		(ref.Kind == v1alpha1.VaultIssuerKind || ref.Kind == v1alpha1.VaultClusterIssuerKind)
}

// isFinished reports whether a request needs no more work: it holds a
// certificate or is Ready=True/Issued (never re-signed; the cache keeps no
// certificate, see CertificateRequestsByObject), or it failed or was denied.
func isFinished(cr *cmapi.CertificateRequest) bool {
	if len(cr.Status.Certificate) > 0 || cr.Status.FailureTime != nil {
		return true
	}
	c := requestReady(cr)
	if c == nil {
		return false
	}
	return (c.Status == cmmeta.ConditionTrue && c.Reason == cmapi.CertificateRequestReasonIssued) ||
		(c.Status == cmmeta.ConditionFalse &&
			(c.Reason == cmapi.CertificateRequestReasonFailed || c.Reason == cmapi.CertificateRequestReasonDenied))
}

// CertificateRequestsByObject is how Keyward caches CertificateRequests:
// without managedFields, and without the issued certificate and CA
// (status.certificate, status.ca), the largest part of an issued request.
// Nothing reads them from the cache: the issuer decides a request is done
// from its Ready condition (isFinished), and the guard reads the CSR
// (spec.request). A request in the cache is for reading only: never write
// it back whole.
func CertificateRequestsByObject() cache.ByObject {
	return cache.ByObject{Transform: func(o any) (any, error) {
		if cr, ok := o.(*cmapi.CertificateRequest); ok {
			cr.ManagedFields = nil
			cr.Status.Certificate, cr.Status.CA = nil, nil
		}
		return o, nil
	}}
}
