// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package revocation

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/keyward-io/keyward/internal/vault/tokenrequest"
	"github.com/keyward-io/keyward/issuer"
)

// DefaultConfigMapName is the ConfigMap, in Keyward's namespace, that holds
// the pending revocations.
const DefaultConfigMapName = "keyward-revocations"

// Event reasons.
const (
	EventScheduled = "RevocationScheduled"
	EventRevoked   = "Revoked"
	EventFailed    = "RevocationFailed"
	EventRejected  = "RevocationRejected"
	EventAbandoned = "RevocationAbandoned"
)

// Options configure Setup. Zero values take the documented defaults.
type Options struct {
	// Namespace holds the state ConfigMap (Keyward's own). Required.
	Namespace string
	// ConfigMapName names it. Default DefaultConfigMapName.
	ConfigMapName string
	// ClusterResourceNamespace is where VaultClusterIssuers' ServiceAccounts
	// and Secrets live (as for the issuer). Required unless Revoker is set.
	ClusterResourceNamespace string
	// Revoker replaces the Vault revoker; tests only.
	Revoker Revoker
	// Clock; default the real clock.
	Clock clock.Clock
	// Registerer receives the metrics; default controller-runtime's registry.
	Registerer prometheus.Registerer
	// RetryBase and RetryMax bound the backoff between failed attempts on
	// one serial (doubling from RetryBase, jittered). Defaults 2s and 5m.
	RetryBase, RetryMax time.Duration
	// AttemptTimeout bounds one attempt, login included. Default 30s.
	AttemptTimeout time.Duration
	// Jitter returns a number in [0,1); default math/rand.
	Jitter func() float64
}

func (o *Options) complete() error {
	if o.Namespace == "" {
		return errors.New("revocation options: Namespace is required")
	}
	if o.Revoker == nil && o.ClusterResourceNamespace == "" {
		return errors.New("revocation options: ClusterResourceNamespace is required")
	}
	if o.ConfigMapName == "" {
		o.ConfigMapName = DefaultConfigMapName
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Registerer == nil {
		o.Registerer = crmetrics.Registry
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 2 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 30 * time.Second
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	return nil
}

// Setup adds the revocation controller to mgr. It runs on the leader only,
// and does nothing until an issuer sets spec.revocation.
func Setup(mgr ctrl.Manager, o Options) error {
	if err := o.complete(); err != nil {
		return err
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return fmt.Errorf("registering revocation metrics: %w", err)
	}
	log := mgr.GetLogger().WithName("revocation")
	c := &Controller{
		client: mgr.GetClient(), api: mgr.GetAPIReader(), informers: mgr.GetCache(),
		recorder: mgr.GetEventRecorder("keyward-revocation"), revoker: o.Revoker,
		opts: o, m: m, log: log, entries: map[string]*Entry{}, wake: make(chan struct{}, 1),
	}
	if c.revoker == nil {
		login := issuer.NewVaultLogin(mgr.GetAPIReader(), tokenrequest.New(mgr.GetClient()), o.ClusterResourceNamespace, o.AttemptTimeout, o.Clock, log.WithName("vault"))
		vr := &VaultRevoker{Login: login}
		c.revoker, c.closer = vr, vr.Close
	}
	return mgr.Add(c)
}

// Controller finds serials that went out of use, keeps them pending for the
// issuer's grace period in a ConfigMap, and revokes them.
type Controller struct {
	client    client.Client // cached reads: issuers, Secrets, Certificates
	api       client.Reader // the state ConfigMap, uncached
	informers cache.Informers
	recorder  events.EventRecorder
	revoker   Revoker
	closer    func()
	opts      Options
	m         *metrics
	log       logr.Logger

	mu      sync.Mutex
	entries map[string]*Entry
	dirty   bool
	// rv is the state ConfigMap's resourceVersion ("" until it exists).
	rv   string
	wake chan struct{}
	// ctx is Start's context, kept for the informer handlers, which get none.
	ctx context.Context
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: one
// replica revokes.
func (c *Controller) NeedLeaderElection() bool { return true }

// Start loads the pending revocations, watches Secrets and Certificates, and
// revokes what is due until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	if c.closer != nil {
		defer c.closer()
	}
	c.ctx = ctx
	if !c.loadUntilDone(ctx) {
		return nil
	}
	stop, err := c.watch(ctx)
	if err != nil {
		return err
	}
	defer stop()
	c.loop(ctx)
	return nil
}

// loadUntilDone reads the state ConfigMap, retrying until it succeeds or ctx
// ends (false). Nothing is revoked and nothing new is recorded before.
func (c *Controller) loadUntilDone(ctx context.Context) bool {
	for n := 1; ; n++ {
		err := c.load(ctx)
		if err == nil {
			return true
		}
		c.log.Error(err, "loading pending revocations; retrying")
		select {
		case <-ctx.Done():
			return false
		case <-c.opts.Clock.After(Backoff(n, c.opts.RetryBase, c.opts.RetryMax, c.opts.Jitter())):
		}
	}
}

func (c *Controller) load(ctx context.Context) error {
	var cm corev1.ConfigMap
	err := c.api.Get(ctx, types.NamespacedName{Namespace: c.opts.Namespace, Name: c.opts.ConfigMapName}, &cm)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading configmap %s/%s: %w", c.opts.Namespace, c.opts.ConfigMapName, err)
	}
	entries, err := Decode(cm.Data[DataKey])
	if err != nil {
		// Unreadable state cannot be revoked from; say so loudly and start
		// afresh rather than stop revoking for good.
		c.log.Error(err, "discarding unreadable pending revocations", "configmap", c.opts.Namespace+"/"+c.opts.ConfigMapName)
		entries = map[string]*Entry{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries, c.rv = entries, cm.ResourceVersion
	c.log.Info("loaded pending revocations", "pending", len(entries))
	return nil
}

// watch registers the informer handlers that detect serials going out of use.
func (c *Controller) watch(ctx context.Context) (func(), error) {
	var stops []func()
	stop := func() {
		for _, s := range stops {
			s()
		}
	}
	for _, w := range []struct {
		obj client.Object
		h   toolscache.ResourceEventHandlerFuncs
	}{
		{&corev1.Secret{}, toolscache.ResourceEventHandlerFuncs{UpdateFunc: c.onSecretUpdate, DeleteFunc: c.onSecretDelete}},
		{&cmapi.Certificate{}, toolscache.ResourceEventHandlerFuncs{DeleteFunc: c.onCertificateDelete}},
	} {
		inf, err := c.informers.GetInformer(ctx, w.obj, cache.BlockUntilSynced(false))
		if err != nil {
			stop()
			return nil, fmt.Errorf("revocation: informer for %T: %w", w.obj, err)
		}
		reg, err := inf.AddEventHandler(w.h)
		if err != nil {
			stop()
			return nil, fmt.Errorf("revocation: handler for %T: %w", w.obj, err)
		}
		stops = append(stops, func() { _ = inf.RemoveEventHandler(reg) })
	}
	return stop, nil
}

func asSecret(obj any) (*corev1.Secret, bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, ok := obj.(*corev1.Secret)
	return s, ok
}

func (c *Controller) onSecretUpdate(oldObj, newObj any) {
	o, ok1 := asSecret(oldObj)
	n, ok2 := asSecret(newObj)
	if !ok1 || !ok2 {
		return
	}
	if e, ok := Superseded(o, n); ok {
		c.offer(e)
	}
}

func (c *Controller) onSecretDelete(obj any) {
	s, ok := asSecret(obj)
	if !ok {
		return
	}
	reason := ReasonSecretDeleted
	if name := s.Annotations[cmapi.CertificateNameKey]; name != "" {
		var crt cmapi.Certificate
		err := c.client.Get(c.ctx, types.NamespacedName{Namespace: s.Namespace, Name: name}, &crt)
		if apierrors.IsNotFound(err) || (err == nil && crt.DeletionTimestamp != nil) {
			reason = ReasonCertificateDeleted
		}
	}
	if e, ok := Orphaned(s, reason); ok {
		c.offer(e)
	}
}

func (c *Controller) onCertificateDelete(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	crt, ok := obj.(*cmapi.Certificate)
	if !ok || crt.Spec.SecretName == "" {
		return
	}
	var s corev1.Secret
	if err := c.client.Get(c.ctx, types.NamespacedName{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, &s); err != nil {
		return // gone already: its own delete event covers it
	}
	if s.Annotations[cmapi.CertificateNameKey] != crt.Name {
		return
	}
	if e, ok := Orphaned(&s, ReasonCertificateDeleted); ok {
		c.offer(e)
	}
}
