// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package agent is `keyward agent`: the delivery sidecar. It serves the
// certificates of a few placeholder Secrets to a gateway (files + reload,
// APISIX or Kong Admin API), reading keys from Vault custody only when the
// Secret's custody version annotation changes.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/internal/httpserve"
)

// Options is the agent's configuration, set by flags.
type Options struct {
	Secrets    []string
	Namespace  string
	Kubeconfig string

	VaultServer    string
	VaultCAFile    string
	VaultNamespace string
	VaultAuthMount string
	VaultRole      string
	VaultTokenFile string
	CustodyMount   string
	CustodyPrefix  string
	// ClusterName is the cluster whose records to read, as Keyward's
	// --cluster-name: records at <prefix>/<cluster-name>/<namespace>/<secret>.
	ClusterName string
	// CustodyStore is where the records live, as Keyward's --custody-store:
	// vault (default), aws, gcp or azure, with the store's settings below.
	// The agent reads with its pod's own cloud identity.
	CustodyStore  string
	AWSRegion     string
	AWSEndpoint   string
	GCPProject    string
	GCPEndpoint   string
	AzureVaultURL string

	Sinks []string

	FilesDir           string
	FilesAllowNonTmpfs bool
	FilesReloadPidfile string
	FilesReloadSignal  string
	FilesReloadURL     string

	HealthAddr   string
	MetricsAddr  string
	ResyncPeriod time.Duration

	LogFormat string
	Verbosity int

	// extra holds the sinks added by RegisterSink, by name.
	extra map[string]SinkFactory
}

// SinkFactory builds a sink from its flags (registered with AddFlags).
type SinkFactory struct {
	AddFlags func(fs *pflag.FlagSet)
	New      func(ctx context.Context, deps SinkDeps) (delivery.Sink, error)
}

// SinkDeps are what the agent hands sink factories.
type SinkDeps struct {
	Vault  *delivery.VaultSession
	Logger logr.Logger
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		Namespace:         os.Getenv("POD_NAMESPACE"),
		VaultAuthMount:    "kubernetes",
		VaultRole:         "keyward-agent",
		VaultTokenFile:    "/var/run/secrets/keyward/token",
		CustodyMount:      vaultkv.DefaultMount,
		CustodyPrefix:     vaultkv.DefaultPrefix,
		CustodyStore:      StoreVault,
		FilesReloadSignal: "HUP",
		HealthAddr:        ":8081",
		ResyncPeriod:      5 * time.Minute,
		MetricsAddr:       ":8080",
		LogFormat:         "json",
		extra:             map[string]SinkFactory{},
	}
}

// RegisterSink adds a sink selectable with --sink name.
func (o *Options) RegisterSink(name string, f SinkFactory) { o.extra[name] = f }

// AddFlags registers every flag.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.Secrets, "secret", o.Secrets, "placeholder Secret to serve, NAMESPACE/NAME or NAME (in --namespace); repeatable")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace of Secrets given without one (default $POD_NAMESPACE)")
	o.AddSharedFlags(fs)
	fs.StringArrayVar(&o.Sinks, "sink", o.Sinks, "where certificates go: files, apisix or kong; repeatable")
	fs.StringVar(&o.FilesDir, "files-dir", o.FilesDir, "files sink: directory receiving NAMESPACE/NAME/{tls.crt,tls.key,ca.crt}")
	fs.BoolVar(&o.FilesAllowNonTmpfs, "files-allow-non-tmpfs", o.FilesAllowNonTmpfs, "files sink: allow a directory that is not on tmpfs (keys would reach a disk)")
	fs.StringVar(&o.FilesReloadPidfile, "files-reload-pidfile", o.FilesReloadPidfile, "files sink: signal the process in this pidfile after a delivery (nginx: its pid file)")
	fs.StringVar(&o.FilesReloadSignal, "files-reload-signal", o.FilesReloadSignal, "files sink: the signal for --files-reload-pidfile")
	fs.StringVar(&o.FilesReloadURL, "files-reload-url", o.FilesReloadURL, "files sink: POST to this URL after a delivery")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", o.ResyncPeriod, "how often the current certificate is re-sent to gateways that keep it in memory only (apisix, kong), from the agent's memory; 0 disables")
	names := make([]string, 0, len(o.extra))
	for n := range o.extra {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		o.extra[n].AddFlags(fs)
	}
}

// AddSharedFlags registers the flags every custody reader sidecar has
// (`keyward agent` and `keyward sds`): Kubernetes, Vault, custody, health,
// metrics and logging.
func (o *Options) AddSharedFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file (default: in-cluster configuration)")
	fs.StringVar(&o.VaultServer, "vault-server", o.VaultServer, "Vault URL (required)")
	fs.StringVar(&o.VaultCAFile, "vault-ca-file", o.VaultCAFile, "PEM CA bundle trusted for Vault's TLS certificate (default: system roots)")
	fs.StringVar(&o.VaultNamespace, "vault-namespace", o.VaultNamespace, "Vault namespace (Vault Enterprise / OpenBao namespaces)")
	fs.StringVar(&o.VaultAuthMount, "vault-auth-mount", o.VaultAuthMount, "Vault Kubernetes auth mount")
	fs.StringVar(&o.VaultRole, "vault-role", o.VaultRole, "Vault Kubernetes auth role (bound to the agent's ServiceAccount, keyward-agent policy)")
	fs.StringVar(&o.VaultTokenFile, "vault-token-file", o.VaultTokenFile, "projected ServiceAccount token (audience vault) presented to Vault; re-read at every login")
	fs.StringVar(&o.CustodyMount, "custody-mount", o.CustodyMount, "custody KV v2 mount")
	fs.StringVar(&o.CustodyPrefix, "custody-prefix", o.CustodyPrefix, "folder of custody records under the mount")
	fs.StringVar(&o.CustodyStore, "custody-store", o.CustodyStore, "where custody records live, as Keyward's --custody-store: vault, aws, gcp or azure")
	fs.StringVar(&o.AWSRegion, "aws-region", o.AWSRegion, "custody-store aws: the region of Secrets Manager")
	fs.StringVar(&o.AWSEndpoint, "aws-endpoint", o.AWSEndpoint, "custody-store aws: endpoint URL override")
	fs.StringVar(&o.GCPProject, "gcp-project", o.GCPProject, "custody-store gcp: the project holding the secrets")
	fs.StringVar(&o.GCPEndpoint, "gcp-endpoint", o.GCPEndpoint, "custody-store gcp: endpoint host:port override")
	fs.StringVar(&o.AzureVaultURL, "azure-vault-url", o.AzureVaultURL, "custody-store azure: the key vault URL")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "the cluster name Keyward runs with (--cluster-name): records at <prefix>/<cluster-name>/<namespace>/<secret>; empty: <prefix>/<namespace>/<secret>")
	fs.StringVar(&o.HealthAddr, "health-addr", o.HealthAddr, "address of /healthz, /readyz and /status (\"0\" disables)")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", o.MetricsAddr, "address of /metrics (\"0\" disables)")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "json or text")
	fs.IntVarP(&o.Verbosity, "v", "v", o.Verbosity, "log verbosity")
}

// ValidateShared checks the flags AddSharedFlags registers.
func (o *Options) ValidateShared() error {
	var errs []error
	errs = append(errs, o.validateStore()...)
	if o.LogFormat != "json" && o.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format %q: use json or text", o.LogFormat))
	}
	if o.ClusterName != "" {
		if err := custody.ValidateClusterName(o.ClusterName); err != nil {
			errs = append(errs, fmt.Errorf("--cluster-name: %w", err))
		}
	}
	return errors.Join(errs...)
}

// secretRefs parses --secret values.
func (o *Options) secretRefs() ([]types.NamespacedName, error) {
	var out []types.NamespacedName
	for _, s := range o.Secrets {
		ns, name, ok := strings.Cut(s, "/")
		if !ok {
			ns, name = o.Namespace, s
		}
		if ns == "" {
			return nil, fmt.Errorf("--secret %q has no namespace and --namespace (or $POD_NAMESPACE) is empty", s)
		}
		if name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("--secret %q is not NAMESPACE/NAME or NAME", s)
		}
		out = append(out, types.NamespacedName{Namespace: ns, Name: name})
	}
	return out, nil
}

var signals = map[string]syscall.Signal{"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "TERM": syscall.SIGTERM, "QUIT": syscall.SIGQUIT}

// Validate reports every configuration error at once.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Secrets) == 0 {
		errs = append(errs, errors.New("at least one --secret is required"))
	}
	if _, err := o.secretRefs(); err != nil {
		errs = append(errs, err)
	}
	if o.VaultServer == "" {
		errs = append(errs, errors.New("--vault-server is required"))
	}
	if len(o.Sinks) == 0 {
		errs = append(errs, errors.New("at least one --sink is required"))
	}
	seen := map[string]bool{}
	for _, s := range o.Sinks {
		if seen[s] {
			errs = append(errs, fmt.Errorf("--sink %s given twice", s))
		}
		seen[s] = true
		if _, ok := o.extra[s]; s != "files" && !ok {
			errs = append(errs, fmt.Errorf("--sink %q: unknown (known: %s)", s, strings.Join(o.sinkNames(), ", ")))
		}
	}
	if seen["files"] {
		if o.FilesDir == "" {
			errs = append(errs, errors.New("--sink files needs --files-dir"))
		}
		if _, ok := signals[strings.TrimPrefix(strings.ToUpper(o.FilesReloadSignal), "SIG")]; !ok {
			errs = append(errs, fmt.Errorf("--files-reload-signal %q: use HUP, USR1, USR2, TERM or QUIT", o.FilesReloadSignal))
		}
	}
	if o.ResyncPeriod < 0 || (o.ResyncPeriod > 0 && o.ResyncPeriod < 10*time.Second) {
		errs = append(errs, fmt.Errorf("--resync-period %s: use 0 (off) or at least 10s", o.ResyncPeriod))
	}
	if o.LogFormat != "json" && o.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format %q: use json or text", o.LogFormat))
	}
	return errors.Join(errs...)
}

func (o *Options) sinkNames() []string {
	n := []string{"files"}
	for k := range o.extra {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

// Run runs the agent until ctx ends. cfg may be nil: then --kubeconfig or
// the in-cluster configuration is used.
func Run(ctx context.Context, cfg *rest.Config, o *Options, log logr.Logger, reg *prometheus.Registry) error {
	if err := o.Validate(); err != nil {
		return err
	}
	refs, _ := o.secretRefs()
	md, err := metadataClient(cfg, o)
	if err != nil {
		return err
	}
	session, reader, closeReader, err := o.StoreReader(ctx, log)
	if err != nil {
		return err
	}
	defer closeReader()
	reg = httpserve.Registry(reg)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	stop := func(g *errgroup.Group) error { cancel(); _ = g.Wait(); return nil }
	if session != nil {
		// Log in from the start: a sink may need Vault (APISIX's mirror) to be built.
		g.Go(func() error { session.Run(ctx); return nil })
	}
	var sinks []delivery.Sink
	for _, name := range o.Sinks {
		var s delivery.Sink
		if name == "files" {
			s, err = delivery.NewFiles(delivery.FilesOptions{
				Dir: o.FilesDir, AllowNonTmpfs: o.FilesAllowNonTmpfs,
				ReloadPidfile: o.FilesReloadPidfile, ReloadURL: o.FilesReloadURL,
				ReloadSignal: signals[strings.TrimPrefix(strings.ToUpper(o.FilesReloadSignal), "SIG")],
			})
		} else {
			s, err = o.extra[name].New(ctx, SinkDeps{Vault: session, Logger: log.WithName(name)})
		}
		if err != nil {
			err = fmt.Errorf("--sink %s: %w", name, err)
			return errors.Join(err, stop(g))
		}
		sinks = append(sinks, s)
	}
	agent, err := delivery.NewAgent(delivery.AgentOptions{
		Secrets: refs, Metadata: md, Reader: reader, Sinks: sinks, Logger: log, Registerer: reg,
		ResyncPeriod: o.ResyncPeriod,
	})
	if err != nil {
		return errors.Join(err, stop(g))
	}
	g.Go(func() error { return agent.Run(ctx) })
	for _, s := range sinks {
		if r, ok := s.(interface{ Run(context.Context) error }); ok {
			g.Go(func() error { return r.Run(ctx) })
		}
	}
	httpserve.Serve(ctx, g, o.HealthAddr, delivery.Handler(agent), "health")
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	httpserve.Serve(ctx, g, o.MetricsAddr, mux, "metrics")
	return g.Wait()
}

// metadataClient is the metadata-only Kubernetes client the agent watches
// its Secrets with: from cfg, else --kubeconfig, else in-cluster.
func metadataClient(cfg *rest.Config, o *Options) (metadata.Interface, error) {
	cfg, err := o.RESTConfig(cfg, "keyward-agent")
	if err != nil {
		return nil, err
	}
	return metadata.NewForConfig(cfg)
}

// RESTConfig is a copy of cfg, else of the --kubeconfig or in-cluster
// configuration, with userAgent.
func (o *Options) RESTConfig(cfg *rest.Config, userAgent string) (*rest.Config, error) {
	if cfg == nil {
		var err error
		if o.Kubeconfig != "" {
			cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		} else {
			cfg, err = rest.InClusterConfig()
		}
		if err != nil {
			return nil, fmt.Errorf("kubernetes client configuration: %w", err)
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = userAgent
	return cfg, nil
}

// vaultReader is the agent's Vault session (not logged in yet: its Run
// does) and the custody reader on it, which logs in again on a 403.
func vaultReader(o *Options, log logr.Logger) (*delivery.VaultSession, *delivery.VaultReader, error) {
	var ca []byte
	if o.VaultCAFile != "" {
		var err error
		if ca, err = os.ReadFile(o.VaultCAFile); err != nil {
			return nil, nil, fmt.Errorf("--vault-ca-file: %w", err)
		}
	}
	session, err := delivery.NewVaultSession(delivery.VaultConfig{
		Server: o.VaultServer, CABundle: ca, Namespace: o.VaultNamespace,
		AuthMount: o.VaultAuthMount, Role: o.VaultRole, TokenFile: o.VaultTokenFile,
	}, log.WithName("vault"))
	if err != nil {
		return nil, nil, err
	}
	reader, err := delivery.NewVaultReader(session.Client, delivery.VaultReaderOptions{
		Mount: o.CustodyMount, Prefix: custody.ClusterPrefix(o.CustodyPrefix, o.ClusterName), OnForbidden: session.Relogin,
	})
	if err != nil {
		return nil, nil, err
	}
	return session, reader, nil
}
