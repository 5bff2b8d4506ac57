// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package issuer is Keyward's cert-manager external issuer: it keeps
// VaultIssuers' and VaultClusterIssuers' Ready conditions true to Vault and
// signs approved CertificateRequests that name them with Vault PKI.
package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/internal/vault/tokenrequest"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// +kubebuilder:rbac:groups=vault.keyward.io,resources=vaultissuers;vaultclusterissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=vault.keyward.io,resources=vaultissuers/status;vaultclusterissuers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Health check timing defaults (Options.HealthCheckPeriod, HealthRetryMax).
const (
	DefaultHealthCheckPeriod = 5 * time.Minute
	DefaultHealthRetryMax    = 10 * time.Second
	DefaultSignWorkers       = 8
)

// Options configure Setup. Zero values take the documented defaults.
type Options struct {
	// ClusterResourceNamespace is where VaultClusterIssuers' Secrets and
	// ServiceAccounts live. Required.
	ClusterResourceNamespace string
	// Clock drives condition times, retry budgets and re-login backoff.
	// Default: the real clock.
	Clock clock.Clock
	// HealthCheckPeriod is how often a Ready issuer is re-checked (one Vault
	// request per issuer per period when nothing else happens). Default
	// DefaultHealthCheckPeriod.
	HealthCheckPeriod time.Duration
	// HealthRetryMax caps the exponential backoff (from 1s) of re-checks of
	// a not-Ready issuer, so an issuer is Ready again at most this long
	// after Vault recovers. Default DefaultHealthRetryMax, and never more
	// than HealthCheckPeriod.
	HealthRetryMax time.Duration
	// SignWorkers is how many CertificateRequests are signed concurrently.
	// Default DefaultSignWorkers.
	SignWorkers int
	// RequestTimeout bounds each health check and each sign call, login
	// included. Default 30s.
	RequestTimeout time.Duration
	// MaxRetryDuration is how long a CertificateRequest is retried on
	// transient errors (Vault unreachable, 5xx) before it is failed.
	// Default 10m.
	MaxRetryDuration time.Duration
	// PendingRequeue is when a Pending CertificateRequest is looked at again
	// without an issuer event. Default 30s.
	PendingRequeue time.Duration
	// Registerer receives the metrics. Default: controller-runtime's metrics.Registry.
	Registerer prometheus.Registerer
	// FieldOwner names Keyward in managedFields. Default "keyward-issuer".
	FieldOwner string
	// Vaults replaces the Vault connector; tests only. Default: log in per
	// issuer with the configured auth and cache the client.
	Vaults Vaults
}

func (o *Options) complete() error {
	if o.ClusterResourceNamespace == "" {
		return errors.New("issuer options: ClusterResourceNamespace is required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.HealthCheckPeriod <= 0 {
		o.HealthCheckPeriod = DefaultHealthCheckPeriod
	}
	if o.HealthRetryMax <= 0 {
		o.HealthRetryMax = DefaultHealthRetryMax
	}
	o.HealthRetryMax = min(o.HealthRetryMax, o.HealthCheckPeriod)
	if o.SignWorkers <= 0 {
		o.SignWorkers = DefaultSignWorkers
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.MaxRetryDuration <= 0 {
		o.MaxRetryDuration = 10 * time.Minute
	}
	if o.PendingRequeue <= 0 {
		o.PendingRequeue = 30 * time.Second
	}
	if o.Registerer == nil {
		o.Registerer = crmetrics.Registry
	}
	if o.FieldOwner == "" {
		o.FieldOwner = "keyward-issuer"
	}
	return nil
}

// AddToScheme registers the types the issuer's controllers need (Keyward's
// issuers and cert-manager's CertificateRequest) with a scheme. The manager
// passed to Setup must use a scheme this has been applied to, plus client-go's.
func AddToScheme(s *runtime.Scheme) error {
	return errors.Join(v1alpha1.AddToScheme(s), cmapi.AddToScheme(s))
}

// Setup registers the issuer-health controllers (one per issuer kind) and the
// CertificateRequest controller with mgr. Cached Vault clients are closed
// when the manager stops.
func Setup(mgr ctrl.Manager, opts Options) error {
	if err := opts.complete(); err != nil {
		return err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return fmt.Errorf("registering issuer metrics: %w", err)
	}
	vaults := opts.Vaults
	if vaults == nil {
		cache := &vault.Cache{}
		vaults = &vaultConnector{
			secrets:           mgr.GetAPIReader(),
			tokens:            tokenrequest.New(mgr.GetClient()),
			clusterResourceNS: opts.ClusterResourceNamespace,
			timeout:           opts.RequestTimeout,
			clock:             opts.Clock,
			log:               mgr.GetLogger().WithName("vault"),
			cache:             cache,
		}
		if err := mgr.Add(closeOnStop{cache}); err != nil {
			return err
		}
	}

	for _, kind := range []struct {
		name string
		obj  func() v1alpha1.GenericIssuer
	}{
		{"vaultissuer", func() v1alpha1.GenericIssuer { return &v1alpha1.VaultIssuer{} }},
		{"vaultclusterissuer", func() v1alpha1.GenericIssuer { return &v1alpha1.VaultClusterIssuer{} }},
	} {
		r := &HealthReconciler{
			Client: mgr.GetClient(), NewIssuer: kind.obj, Vaults: vaults, Clock: opts.Clock,
			Recorder: mgr.GetEventRecorder("keyward-issuer"), Period: opts.HealthCheckPeriod,
			Timeout: opts.RequestTimeout, FieldOwner: opts.FieldOwner, metrics: m,
		}
		err := ctrl.NewControllerManagedBy(mgr).
			Named(kind.name+"-health").
			// Spec changes trigger a check, and so does Ready turning False
			// (the CertificateRequest controller marks an issuer not Ready
			// when signing reveals a failure; the check then retries with
			// backoff until Vault recovers). Other status writes do not, or
			// a failing check would loop.
			For(kind.obj(), builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, becameNotReady{}))).
			WithOptions(controller.Options{
				RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, opts.HealthRetryMax),
			}).
			Complete(r)
		if err != nil {
			return fmt.Errorf("setting up %s health controller: %w", kind.name, err)
		}
	}

	cr := &CertificateRequestReconciler{
		Client: mgr.GetClient(), Vaults: vaults, Clock: opts.Clock,
		Recorder: mgr.GetEventRecorder("keyward-issuer"), SignTimeout: opts.RequestTimeout,
		MaxRetryDuration: opts.MaxRetryDuration, PendingRequeue: opts.PendingRequeue,
		FieldOwner: opts.FieldOwner, metrics: m,
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("vault-certificaterequest").
		For(&cmapi.CertificateRequest{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			cr, ok := o.(*cmapi.CertificateRequest)
			return ok && isOurs(cr)
		}))).
		Watches(&v1alpha1.VaultIssuer{}, handler.EnqueueRequestsFromMapFunc(requestsForIssuer(mgr.GetClient())), builder.WithPredicates(becameReady{})).
		Watches(&v1alpha1.VaultClusterIssuer{}, handler.EnqueueRequestsFromMapFunc(requestsForIssuer(mgr.GetClient())), builder.WithPredicates(becameReady{})).
		WithOptions(controller.Options{
			// Several requests sign at once: one slow or hung Vault call
			// must not hold up every other request (or issuer).
			MaxConcurrentReconciles: opts.SignWorkers,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 2*time.Minute),
		}).
		Complete(cr)
	if err != nil {
		return fmt.Errorf("setting up certificaterequest controller: %w", err)
	}
	return nil
}

// requestsForIssuer maps an issuer to the unfinished CertificateRequests
// that reference it, so they are signed as soon as it becomes Ready.
func requestsForIssuer(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		iss, ok := o.(v1alpha1.GenericIssuer)
		if !ok {
			return nil
		}
		var list cmapi.CertificateRequestList
		var opts []client.ListOption
		if iss.IssuerKind() == v1alpha1.VaultIssuerKind {
			opts = append(opts, client.InNamespace(iss.GetNamespace()))
		}
		if err := c.List(ctx, &list, opts...); err != nil {
			return nil
		}
		var out []reconcile.Request
		for i := range list.Items {
			cr := &list.Items[i]
			ref := cr.Spec.IssuerRef
			if isOurs(cr) && !isFinished(cr) && ref.Kind == iss.IssuerKind() && ref.Name == iss.GetName() {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name}})
			}
		}
		return out
	}
}

// becameReady passes issuer updates whose Ready condition turned True.
type becameReady struct{ predicate.Funcs }

// Update implements predicate.Predicate.
func (becameReady) Update(e event.UpdateEvent) bool {
	oldIss, ok1 := e.ObjectOld.(v1alpha1.GenericIssuer)
	newIss, ok2 := e.ObjectNew.(v1alpha1.GenericIssuer)
	if !ok1 || !ok2 {
		return false
	}
	wasReady, _ := issuerReady(oldIss)
	isReady, _ := issuerReady(newIss)
	return isReady && !wasReady
}

// becameNotReady passes issuer updates whose Ready condition turned False.
type becameNotReady struct{}

// Create implements predicate.Predicate.
func (becameNotReady) Create(event.CreateEvent) bool { return false }

// Delete implements predicate.Predicate.
func (becameNotReady) Delete(event.DeleteEvent) bool { return false }

// Generic implements predicate.Predicate.
func (becameNotReady) Generic(event.GenericEvent) bool { return false }

// Update implements predicate.Predicate.
func (becameNotReady) Update(e event.UpdateEvent) bool {
	oldIss, ok1 := e.ObjectOld.(v1alpha1.GenericIssuer)
	newIss, ok2 := e.ObjectNew.(v1alpha1.GenericIssuer)
	if !ok1 || !ok2 {
		return false
	}
	notReady := func(iss v1alpha1.GenericIssuer) bool {
		_, c := issuerReady(iss)
		return c != nil && c.Status == metav1.ConditionFalse
	}
	return notReady(newIss) && !notReady(oldIss)
}

// closeOnStop closes the Vault client cache when the manager stops.
type closeOnStop struct{ cache *vault.Cache }

// Start implements manager.Runnable: it blocks until the manager stops.
func (c closeOnStop) Start(ctx context.Context) error {
	<-ctx.Done()
	c.cache.Close()
	return nil
}
