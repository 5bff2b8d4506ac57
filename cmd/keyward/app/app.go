// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package app

import (
	"context"
	"errors"
	"fmt"
	"os"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/keyward-io/keyward/adopt"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/internal/vault/tokenrequest"
	"github.com/keyward-io/keyward/issuer"
	"github.com/keyward-io/keyward/listeners"
	"github.com/keyward-io/keyward/revocation"
	"github.com/keyward-io/keyward/scrubber"
	"github.com/keyward-io/keyward/webhook"
	"k8s.io/client-go/discovery"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Scheme returns a scheme with every type Keyward reads or writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	if err := issuer.AddToScheme(s); err != nil {
		return nil, err
	}
	// Gateways, ListenerSets and GatewayClasses: the TLS reference check
	// and the scrub webhook's choice of SDS references (package listeners).
	if err := gwapiv1.Install(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Deps are injected by tests and the demo; the binary uses the zero value.
type Deps struct {
	// Clock; default the real clock.
	Clock clock.WithTicker
	// Registerer for Keyward's metrics; default controller-runtime's registry.
	// Tests running several managers in one process pass their own.
	Registerer prometheus.Registerer
	// Logger; default ctrl.Log.
	Logger logr.Logger
	// SeveralManagers allows more than one manager in a process (tests start
	// and restart Keyward in-process); it lifts controller-runtime's check
	// that controller names are unique process-wide.
	SeveralManagers bool
	// CustodyStores, when set, opens the custody writer's and the guard's
	// stores instead of Options.CustodyStore (tests: a cloud store on an
	// in-process fake with one identity each).
	CustodyStores func(ctx context.Context) (writer, guard custody.Store, err error)
}

// NewManager builds the manager with every enabled component registered.
// Call mgr.Start to run it; closers must be called after it stops.
func NewManager(ctx context.Context, cfg *rest.Config, o *Options, deps Deps) (mgr ctrl.Manager, closers []func(), err error) {
	if err := o.Validate(); err != nil {
		return nil, nil, fmt.Errorf("invalid options: %w", err)
	}
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.Registerer == nil {
		deps.Registerer = crmetrics.Registry
	}
	if deps.Logger.GetSink() == nil {
		deps.Logger = ctrl.Log
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, nil, err
	}
	mgr, err = ctrl.NewManager(withWarningFilter(cfg), managerOptions(o, deps, scheme))
	if err != nil {
		return nil, nil, fmt.Errorf("creating manager: %w", err)
	}
	defer func() {
		if err != nil {
			for _, c := range closers {
				c()
			}
			closers = nil
		}
	}()
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, nil, err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, nil, err
	}

	if o.EnableIssuer {
		if err := issuer.Setup(mgr, issuer.Options{
			ClusterResourceNamespace: o.ClusterResourceNamespace,
			HealthCheckPeriod:        o.IssuerHealthPeriod,
			Clock:                    deps.Clock,
			Registerer:               deps.Registerer,
		}); err != nil {
			return nil, nil, fmt.Errorf("setting up the issuer: %w", err)
		}
		// Revocation of superseded certificates, for issuers with
		// spec.revocation (docs/revocation.md); leader only.
		if err := revocation.Setup(mgr, revocation.Options{
			Namespace: o.LeaderElectionNS, ConfigMapName: o.RevocationConfigMap,
			ClusterResourceNamespace: o.ClusterResourceNamespace, Clock: deps.Clock, Registerer: deps.Registerer,
		}); err != nil {
			return nil, nil, fmt.Errorf("setting up revocation: %w", err)
		}
	}
	if o.EnableCustody {
		c, err := setupCustody(ctx, mgr, o, deps)
		closers = append(closers, c...)
		if err != nil {
			return nil, closers, err
		}
	}
	return mgr, closers, nil
}

// managerOptions is the manager's configuration: one cache for every
// component, leader election, metrics, probes and the webhook server.
func managerOptions(o *Options, deps Deps, scheme *runtime.Scheme) ctrl.Options {
	// One cache for every component. Secrets: TLS only, out-of-scope data
	// dropped (the issuer reads its credentials Secrets uncached).
	// CertificateRequests: without their issued certificate and CA.
	// Certificates: metadata and spec. Nothing here reads managedFields
	// from the cache (the watcher reads them from the live object), so they
	// are dropped too: they are a large share of every cached object.
	cacheOpts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:            scrubber.TLSSecretsByObject(),
			&cmapi.CertificateRequest{}: issuer.CertificateRequestsByObject(),
			&cmapi.Certificate{}:        scrubber.CertificatesByObject(),
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	}
	if len(o.WatchNamespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.WatchNamespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return ctrl.Options{
		Scheme:                        scheme,
		Cache:                         cacheOpts,
		Controller:                    config.Controller{SkipNameValidation: ptr.To(deps.SeveralManagers)},
		Logger:                        deps.Logger,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.LeaseDuration,
		RenewDeadline:                 &o.RenewDeadline,
		RetryPeriod:                   &o.RetryPeriod,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:        o.HealthProbeBindAddress,
		PprofBindAddress:              o.PprofBindAddress,
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host:    o.WebhookHost,
			Port:    o.WebhookPort,
			CertDir: o.WebhookCertDir,
		}),
	}
}

// setupCustody opens the custody writer's and the guard's stores, each
// with its own identity (and so its own permissions), and hands them to
// webhook.SetupCustody.
func setupCustody(ctx context.Context, mgr ctrl.Manager, o *Options, deps Deps) ([]func(), error) {
	dc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	served, err := listeners.Discover(dc)
	if err != nil {
		return nil, err
	}
	deps.Logger.Info("TLS reference check", "gatewayAPI", served.Gateways, "listenerSets", served.ListenerSets, "apisixTls", served.ApisixTls)
	var st custodyStores
	switch {
	case deps.CustodyStores != nil:
		st.writer, st.guard, err = deps.CustodyStores(ctx)
	case o.CustodyStore == StoreVault:
		st, err = openVaultStores(ctx, mgr, o, deps)
	default:
		st, err = openCloudStores(ctx, o)
	}
	if err != nil {
		return st.closers, err
	}
	sel, err := labels.Parse(o.CustodyNamespaceSelector)
	if err != nil {
		return st.closers, fmt.Errorf("custodyNamespaceSelector %q: %w", o.CustodyNamespaceSelector, err)
	}
	deps.Logger.Info("custody store", "store", o.CustodyStore, "example", st.writer.Path("<namespace>", "<secret>"))
	return st.closers, webhook.SetupCustody(ctx, mgr, webhook.CustodyOptions{
		Writer:            st.writer,
		GuardStore:        st.guard,
		Clock:             deps.Clock,
		Registerer:        deps.Registerer,
		Logger:            deps.Logger,
		NamespaceSelector: sel,
		StrictDefault:     o.RedactCertificates,
		AuditPeriod:       o.CustodyAuditPeriod,
		AuditReadRecords:  o.CustodyAuditReadRecords,
		WriteTimeout:      o.CustodyWriteTimeout,
		WatcherWorkers:    o.CustodyWatcherWorkers,
		Served:            served,
		Adoption:          st.adoption,
	})
}

// custodyStores are what setupCustody opens: the custody writer's store,
// the guard's (metadata only where the store can express it), the adopter
// when adoption is on, and what to close when the manager stops.
type custodyStores struct {
	writer, guard custody.Store
	adoption      *adopt.Adopter
	closers       []func()
}

// openVaultStores logs the custody writer and the guard in to Vault, each
// with its own Kubernetes auth role (and so its own policy), and the
// adopter with its role when adoption is on.
func openVaultStores(ctx context.Context, mgr ctrl.Manager, o *Options, deps Deps) (custodyStores, error) {
	var st custodyStores
	vcfg := vault.Config{Server: o.VaultAddr, Namespace: o.VaultNamespace}
	if o.VaultCAFile != "" {
		ca, err := os.ReadFile(o.VaultCAFile)
		if err != nil {
			return st, fmt.Errorf("reading vault CA file %s: %w", o.VaultCAFile, err)
		}
		vcfg.CABundle = ca
	}
	tokens := tokenrequest.New(mgr.GetClient())
	login := func(role string) (*vault.Client, error) {
		c, err := vault.Login(ctx, vcfg, &vault.KubernetesAuth{
			MountPath:      o.VaultAuthMount,
			Role:           role,
			Namespace:      o.ServiceAccountNamespace,
			ServiceAccount: o.ServiceAccountName,
			Audiences:      []string{o.VaultAudience},
			Tokens:         tokens,
		}, vault.LoginOptions{Logger: deps.Logger.WithName("vault").WithValues("role", role)})
		if err != nil {
			return nil, fmt.Errorf("logging in to vault %s as role %s: %w", o.VaultAddr, role, err)
		}
		st.closers = append(st.closers, c.Close)
		return c, nil
	}
	writer, err := login(o.VaultCustodyRole)
	if err != nil {
		return st, err
	}
	guardClient, err := login(o.VaultGuardRole)
	if err != nil {
		return st, err
	}
	storeOpts := vaultkv.Options{Mount: o.CustodyMount, Prefix: custody.ClusterPrefix(o.CustodyPrefix, o.ClusterName), MaxVersions: o.CustodyMaxVersions}
	ws, err := vaultkv.New(writer.API(), storeOpts)
	if err != nil {
		return st, fmt.Errorf("custody store: %w", err)
	}
	st.writer = ws
	// Records keep --custody-max-versions versions through the mount's
	// max_versions: a custody write is one data write, nothing per key.
	wrote, err := ws.EnsureMaxVersions(ctx)
	if err != nil {
		return st, fmt.Errorf("custody store (role %s): %w", o.VaultCustodyRole, err)
	}
	if wrote {
		deps.Logger.Info("set the custody mount's max_versions", "mount", o.CustodyMount, "maxVersions", o.CustodyMaxVersions)
	}
	if st.guard, err = vaultkv.New(guardClient.API(), storeOpts); err != nil {
		return st, fmt.Errorf("guard custody store: %w", err)
	}
	if o.VaultAdoptRole != "" {
		adopter, err := login(o.VaultAdoptRole)
		if err != nil {
			return st, err
		}
		st.adoption = &adopt.Adopter{Self: o.ClusterName, Sources: adoptionSources(adopter, o)}
	}
	return st, nil
}

// adoptionSources reads other clusters' records with the adoption role:
// metadata through a Store, the key through a Reader, both under
// <prefix>/<cluster>. The role's Vault policy says which clusters.
func adoptionSources(c *vault.Client, o *Options) func(cluster string) (adopt.Source, error) {
	return func(cluster string) (adopt.Source, error) {
		if err := custody.ValidateClusterName(cluster); err != nil {
			return nil, err
		}
		return NewVaultSource(c.API(), o.CustodyMount, custody.ClusterPrefix(o.CustodyPrefix, cluster))
	}
}

// NewVaultSource reads Vault KV v2 custody records under mount/prefix,
// key included, with c's token: metadata through a Store, the key through
// a Reader. Adoption and `keyward migrate-custody` read with it.
func NewVaultSource(c *vaultapi.Client, mount, prefix string) (adopt.Source, error) {
	meta, err := vaultkv.New(c, vaultkv.Options{Mount: mount, Prefix: prefix})
	if err != nil {
		return nil, err
	}
	data, err := vaultkv.NewReader(func() *vaultapi.Client { return c }, vaultkv.ReaderOptions{Mount: mount, Prefix: prefix})
	if err != nil {
		return nil, err
	}
	return vaultSource{meta, data}, nil
}

type vaultSource struct {
	*vaultkv.Store
	*vaultkv.Reader
}

func (s vaultSource) Metadata(ctx context.Context, namespace, name string) (custody.Metadata, error) {
	return s.Store.Metadata(ctx, namespace, name)
}

func (s vaultSource) Read(ctx context.Context, namespace, name string, version int) (custody.Record, error) {
	return s.Reader.Read(ctx, namespace, name, version)
}

// Run builds the manager and runs it until ctx is cancelled.
func Run(ctx context.Context, cfg *rest.Config, o *Options, deps Deps) error {
	mgr, closers, err := NewManager(ctx, cfg, o, deps)
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	if err != nil {
		return err
	}
	if err := mgr.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}
