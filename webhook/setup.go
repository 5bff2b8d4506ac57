// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/keyward-io/keyward/adopt"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/guard"
	"github.com/keyward-io/keyward/listeners"
	"github.com/keyward-io/keyward/scrubber"
)

// CustodyOptions configure SetupCustody.
type CustodyOptions struct {
	// Writer is the custody store the scrub webhook and the watcher write
	// to (the custody writer's Vault role). Required.
	Writer custody.Store
	// GuardStore is the store the guard reads metadata from (the guard's
	// own Vault role: metadata only). Required.
	GuardStore custody.Store
	// Clock; default the real clock.
	Clock clock.WithTicker
	// Registerer for the metrics; default controller-runtime's registry.
	Registerer prometheus.Registerer
	// Logger for the guard; default mgr's.
	Logger logr.Logger
	// NamespaceSelector selects custody namespaces (the watcher's scope; the
	// webhooks' is their namespaceSelector). Default keyward.io/custody=enabled.
	NamespaceSelector labels.Selector
	// StrictDefault is strict mode for namespaces without the
	// keyward.io/redact-certificates label.
	StrictDefault bool
	// AuditPeriod, WriteTimeout and WatcherWorkers: see scrubber.WatcherOptions.
	AuditPeriod time.Duration
	// AuditReadRecords: see scrubber.WatcherOptions.
	AuditReadRecords bool
	WriteTimeout     time.Duration
	WatcherWorkers   int
	// Served is which optional APIs (Gateway API, ListenerSets, APISIX's
	// ApisixTls) the apiserver serves (listeners.Discover): the TLS
	// reference check watches those, and the scrub webhook creates SDS
	// references only when Gateways are served. mgr's scheme must know the
	// Gateway API types when Served.Gateways is set.
	Served listeners.Served
	// Adoption, when set, serves the adoption webhook at AdoptPath
	// (package adopt). Its Scrubber and Secret client are filled in here.
	Adoption *adopt.Adopter
}

// SetupCustody adds everything custody needs to mgr, the way production
// runs it: ONE Scrubber shared by the scrub webhook and the watcher (so the
// confirmed writes of both prime the guard's cache), the watcher with its
// audit, the scrub webhook at SecretScrubPath (with rejection events on the
// Certificate) and the guard at GuardPath (SetupCertificateGuard). It
// starts the informers the admission handlers read, without waiting, so the
// first request does not pay for the initial list. mgr's scheme must know
// cert-manager's types and its cache must hold Secrets as
// scrubber.TLSSecretsByObject says.
func SetupCustody(ctx context.Context, mgr ctrl.Manager, o CustodyOptions) error {
	if o.Writer == nil || o.GuardStore == nil {
		return errors.New("custody needs a writer store and a guard store")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Registerer == nil {
		o.Registerer = crmetrics.Registry
	}
	if o.Logger.GetSink() == nil {
		o.Logger = mgr.GetLogger()
	}
	metrics, err := scrubber.NewMetrics(o.Registerer)
	if err != nil {
		return fmt.Errorf("custody metrics: %w", err)
	}
	scrub, err := scrubber.NewScrubber(o.Writer, o.Clock, metrics, o.WriteTimeout)
	if err != nil {
		return err
	}
	sdsSecrets, err := scrubber.NewSDSSecretCache(mgr)
	if err != nil {
		return err
	}
	if err := scrubber.SetupWatcher(mgr, scrubber.WatcherOptions{
		Scrubber:          scrub,
		Clock:             o.Clock,
		NamespaceSelector: o.NamespaceSelector,
		StrictDefault:     o.StrictDefault,
		AuditPeriod:       o.AuditPeriod,
		AuditReadRecords:  o.AuditReadRecords,
		Workers:           o.WatcherWorkers,
		SecretCache:       mgr.GetCache(),
		SDSSecretCache:    sdsSecrets,
	}); err != nil {
		return fmt.Errorf("setting up the custody watcher: %w", err)
	}
	sds, err := listeners.Setup(mgr, listeners.Options{
		Served:       o.Served,
		SecretCaches: []cache.Cache{mgr.GetCache(), sdsSecrets},
		Secrets:      scrubber.SecretReader{Main: mgr.GetCache(), SDS: sdsSecrets},
		Registerer:   o.Registerer,
	})
	if err != nil {
		return err
	}
	if err := startAdmissionInformers(ctx, mgr, o.Served); err != nil {
		return err
	}
	scrubHandler, err := NewSecretScrubber(scrub, scrubber.NamespaceStrictMode{Reader: mgr.GetCache(), Default: o.StrictDefault})
	if err != nil {
		return err
	}
	scrubHandler.WithRejectionEvents(mgr.GetCache(), mgr.GetEventRecorder("keyward-scrub-webhook"))
	if sds != nil {
		scrubHandler.WithSDS(sds)
	}
	guardHandler, err := SetupCertificateGuard(ctx, mgr, o.GuardStore, o.Clock, o.Registerer, o.Logger.WithName("guard"),
		WithGuardSDSSecrets(sdsSecrets), WithGuardEvents(mgr.GetEventRecorder("keyward-custody-guard")))
	if err != nil {
		return err
	}
	// Confirmed custody writes prime the guard's cache: its first decision
	// on a fresh placeholder reads no Vault.
	scrub.OnCustodyWrite(guardHandler.Prime)
	mgr.GetWebhookServer().Register(SecretScrubPath, &ctrlwebhook.Admission{Handler: scrubHandler})
	if o.Adoption != nil {
		a := *o.Adoption
		a.Scrubber, a.SecretReader, a.SecretWriter, a.Clock = scrub, mgr.GetAPIReader(), mgr.GetClient(), o.Clock
		a.Strict = scrubber.NamespaceStrictMode{Reader: mgr.GetCache(), Default: o.StrictDefault}
		h, err := NewCertificateAdopter(&a, mgr.GetCache(), o.Registerer, o.Logger.WithName("adopt"))
		if err != nil {
			return err
		}
		mgr.GetWebhookServer().Register(AdoptPath, &ctrlwebhook.Admission{Handler: h})
	}
	return nil
}

// startAdmissionInformers starts, without waiting, the informers the scrub
// webhook reads. Strict mode reads Namespaces; the scrub webhook reads
// Certificates to report denials, and Gateways, ListenerSets and
// GatewayClasses to choose SDS references. The controllers that also watch
// them start only on the leader; every replica serves the webhook.
func startAdmissionInformers(ctx context.Context, mgr ctrl.Manager, served listeners.Served) error {
	informers := []client.Object{&corev1.Namespace{}, &cmapi.Certificate{}}
	if served.Gateways {
		informers = append(informers, &gwapiv1.Gateway{}, &gwapiv1.GatewayClass{})
	}
	if served.ListenerSets {
		informers = append(informers, &gwapiv1.ListenerSet{})
	}
	for _, obj := range informers {
		if _, err := mgr.GetCache().GetInformer(ctx, obj, cache.BlockUntilSynced(false)); err != nil {
			return fmt.Errorf("starting the %T informer: %w", obj, err)
		}
	}
	return nil
}

// SetupCertificateGuard builds the guard on mgr's informer cache (with the
// CertificateRequest owner index and a live reader for the check before a
// veto), starts the Secret and CertificateRequest informers without
// waiting, and registers the handler at GuardPath. SetupCustody calls it;
// tests that run the guard alone call it too.
func SetupCertificateGuard(ctx context.Context, mgr ctrl.Manager, store custody.Store, clk clock.PassiveClock, reg prometheus.Registerer, log logr.Logger, opts ...GuardOption) (*CertificateGuard, error) {
	if err := guard.IndexCertificateRequestOwner(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	for _, obj := range []client.Object{&corev1.Secret{}, &cmapi.CertificateRequest{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj, cache.BlockUntilSynced(false)); err != nil {
			return nil, fmt.Errorf("starting informer for the custody guard (%T): %w", obj, err)
		}
	}
	opts = append([]GuardOption{WithGuardOwnerIndex(), WithGuardLiveReader(mgr.GetAPIReader())}, opts...)
	g, err := NewCertificateGuard(mgr.GetCache(), store, clk, reg, log, opts...)
	if err != nil {
		return nil, err
	}
	mgr.GetWebhookServer().Register(GuardPath, &ctrlwebhook.Admission{Handler: g})
	return g, nil
}
