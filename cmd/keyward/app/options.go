// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package app builds Keyward's controller-runtime manager: the issuer
// reconcilers, the custody watcher and the admission webhooks (Secret scrub,
// custody guard). The keyward binary, the e2e tests and the demo all run it.
package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/issuer"
	"github.com/keyward-io/keyward/revocation"
	"github.com/keyward-io/keyward/scrubber"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Options is Keyward's whole configuration. Flags and an optional YAML config
// file (same field names as the JSON tags) set it; flags win.
type Options struct {
	// ConfigFile is a YAML file with any of the fields below.
	ConfigFile string `json:"-"`

	LeaderElect      bool   `json:"leaderElect"`
	LeaderElectionID string `json:"leaderElectionID"`
	LeaderElectionNS string `json:"leaderElectionNamespace"`
	// Lease timings: a leader that cannot renew within RenewDeadline (an
	// apiserver restart, say) stops, so they must outlast such blips.
	LeaseDuration          time.Duration `json:"-"`
	RenewDeadline          time.Duration `json:"-"`
	RetryPeriod            time.Duration `json:"-"`
	MetricsBindAddress     string        `json:"metricsBindAddress"`
	HealthProbeBindAddress string        `json:"healthProbeBindAddress"`
	// PprofBindAddress serves Go's /debug/pprof/ when set (off by default:
	// profiles show code paths and timings, so bind it to loopback only).
	PprofBindAddress string `json:"pprofBindAddress"`
	WebhookHost      string `json:"webhookHost"`
	WebhookPort      int    `json:"webhookPort"`
	WebhookCertDir   string `json:"webhookCertDir"`

	// ClusterResourceNamespace holds the Secrets and ServiceAccounts that
	// VaultClusterIssuers reference.
	ClusterResourceNamespace string `json:"clusterResourceNamespace"`

	// Vault used by the custody components (the issuers name their own server).
	VaultAddr      string `json:"vaultAddr"`
	VaultCAFile    string `json:"vaultCAFile"`
	VaultNamespace string `json:"vaultNamespace"`
	// VaultAuthMount is the Kubernetes auth mount the custody components log in with.
	VaultAuthMount string `json:"vaultAuthMount"`
	// VaultCustodyRole and VaultGuardRole are the Kubernetes auth roles of the
	// custody writer (scrub webhook + watcher) and the guard: one policy each.
	VaultCustodyRole string `json:"vaultCustodyRole"`
	VaultGuardRole   string `json:"vaultGuardRole"`
	VaultAudience    string `json:"vaultAudience"`
	// ServiceAccount (namespace/name) whose TokenRequest tokens log in to Vault;
	// defaults to $POD_NAMESPACE/keyward.
	ServiceAccountNamespace string `json:"serviceAccountNamespace"`
	ServiceAccountName      string `json:"serviceAccountName"`

	// CustodyStore is where custody records live: StoreVault (Vault KV v2,
	// the default), StoreAWS, StoreGCP or StoreAzure (docs/stores.md).
	CustodyStore  string `json:"custodyStore"`
	CustodyMount  string `json:"custodyMount"`
	CustodyPrefix string `json:"custodyPrefix"`
	// Cloud custody stores. Keyward authenticates the way pods do on each
	// cloud (the SDKs' default chains: IRSA or EKS Pod Identity, GKE
	// Workload Identity, Azure Workload Identity); the guard* settings give
	// the guard a second, metadata-only identity (an AWS role it assumes, a
	// GCP service account it impersonates, an Azure workload identity
	// client ID). Without them the guard uses the writer's identity.
	AWSRegion              string `json:"awsRegion"`
	AWSEndpoint            string `json:"awsEndpoint"`
	AWSGuardRoleARN        string `json:"awsGuardRoleARN"`
	GCPProject             string `json:"gcpProject"`
	GCPEndpoint            string `json:"gcpEndpoint"`
	GCPGuardServiceAccount string `json:"gcpGuardServiceAccount"`
	AzureVaultURL          string `json:"azureVaultURL"`
	AzureGuardClientID     string `json:"azureGuardClientID"`

	// ClusterName separates this cluster's custody records from those of
	// other clusters sharing the Vault: records live at
	// <mount>/<prefix>/<clusterName>/<namespace>/<secret>. Empty keeps the
	// single-cluster layout <mount>/<prefix>/<namespace>/<secret>.
	ClusterName string `json:"clusterName"`
	// VaultAdoptRole is the Kubernetes auth role that may read the custody
	// records of the clusters this one adopts from (package adopt). Empty
	// turns adoption off: namespaces labelled keyward.io/adopt-from-cluster
	// are then refused by the adoption webhook, if it is installed.
	VaultAdoptRole string `json:"vaultAdoptRole"`

	CustodyMaxVersions  int           `json:"custodyMaxVersions"`
	CustodyWriteTimeout time.Duration `json:"-"`
	// RedactCertificates turns strict mode on by default (namespace label overrides).
	RedactCertificates bool `json:"redactCertificates"`
	// CustodyAuditPeriod is how often the watcher checks that every placeholder
	// Secret still has its custody record (0 disables the audit).
	CustodyAuditPeriod time.Duration `json:"-"`
	// CustodyAuditReadRecords makes the audit read every placeholder's
	// record metadata instead of listing each namespace's records.
	CustodyAuditReadRecords bool `json:"custodyAuditReadRecords"`
	// CustodyWatcherWorkers is how many Secrets the watcher scrubs at once.
	CustodyWatcherWorkers int `json:"custodyWatcherWorkers"`
	// CustodyNamespaceSelector selects opted-in namespaces (label selector syntax).
	CustodyNamespaceSelector string `json:"custodyNamespaceSelector"`

	// WatchNamespaces limits Keyward's caches (Secrets, Certificates,
	// CertificateRequests, VaultIssuers) to these namespaces; empty means all.
	// The chart narrows RBAC to Roles in the same namespaces.
	WatchNamespaces []string `json:"watchNamespaces"`

	// IssuerHealthPeriod is how often a Ready issuer's Vault is re-checked.
	IssuerHealthPeriod time.Duration `json:"-"`
	// RevocationConfigMap names the ConfigMap, in the leader election
	// namespace, that holds pending revocations (docs/revocation.md).
	RevocationConfigMap string `json:"revocationConfigMap"`

	// Components can be switched off, e.g. to run only the issuer.
	EnableIssuer  bool `json:"enableIssuer"`
	EnableCustody bool `json:"enableCustody"`

	LogFormat string `json:"logFormat"`
	Verbosity int    `json:"v"`

	// MemoryLimitRatio is the share of the container's memory limit (its
	// cgroup's) given to the Go runtime as its soft memory limit, applied
	// by the keyward binary at start (internal/memlimit); 0 leaves the
	// runtime as it is, and a GOMEMLIMIT environment variable wins. The
	// default leaves a quarter for what the runtime does not count: the
	// binary's own resident pages (about 60 MiB of keyward's code and data,
	// docs/benchmarks.md section 6) and the kernel's share.
	MemoryLimitRatio float64 `json:"memoryLimitRatio"`
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "keyward-system"
	}
	return &Options{
		LeaderElectionID:         "keyward-leader.keyward.io",
		LeaderElectionNS:         ns,
		LeaseDuration:            60 * time.Second,
		RenewDeadline:            40 * time.Second,
		RetryPeriod:              15 * time.Second,
		MetricsBindAddress:       ":8080",
		HealthProbeBindAddress:   ":8081",
		WebhookPort:              9443,
		WebhookCertDir:           "/tmp/k8s-webhook-server/serving-certs",
		ClusterResourceNamespace: ns,
		VaultAuthMount:           "kubernetes",
		VaultCustodyRole:         "keyward-custody-writer",
		VaultGuardRole:           "keyward-guard",
		VaultAudience:            "vault",
		ServiceAccountNamespace:  ns,
		ServiceAccountName:       "keyward",
		CustodyStore:             StoreVault,
		CustodyMount:             "custody",
		CustodyPrefix:            "tls",
		CustodyMaxVersions:       vaultkv.DefaultMaxVersions,
		CustodyWriteTimeout:      5 * time.Second,
		CustodyAuditPeriod:       scrubber.DefaultAuditPeriod,
		CustodyWatcherWorkers:    scrubber.DefaultWatcherWorkers,
		CustodyNamespaceSelector: "keyward.io/custody=enabled",
		IssuerHealthPeriod:       issuer.DefaultHealthCheckPeriod,
		RevocationConfigMap:      revocation.DefaultConfigMapName,
		EnableIssuer:             true,
		EnableCustody:            true,
		LogFormat:                "json",
		MemoryLimitRatio:         0.75,
	}
}

// AddFlags registers every option on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "YAML file with options (flags given on the command line win)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "elect a leader among replicas for the controllers (webhooks are served by every replica)")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "name of the leader election Lease")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", o.LeaderElectionNS, "namespace of the leader election Lease")
	fs.DurationVar(&o.LeaseDuration, "leader-election-lease-duration", o.LeaseDuration, "how long a non-leader waits before taking over an unrenewed lease")
	fs.DurationVar(&o.RenewDeadline, "leader-election-renew-deadline", o.RenewDeadline, "how long the leader keeps trying to renew before it stops leading (and exits)")
	fs.DurationVar(&o.RetryPeriod, "leader-election-retry-period", o.RetryPeriod, "interval between lease acquire and renew attempts")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Prometheus metrics address (\"0\" disables)")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "address of /healthz and /readyz (\"0\" disables)")
	fs.StringVar(&o.PprofBindAddress, "pprof-bind-address", o.PprofBindAddress, "address of Go's /debug/pprof/ endpoints, for profiling (empty or \"0\": off; bind it to 127.0.0.1)")
	fs.StringVar(&o.WebhookHost, "webhook-host", o.WebhookHost, "address the webhook server listens on (empty: all)")
	fs.IntVar(&o.WebhookPort, "webhook-port", o.WebhookPort, "port of the webhook server")
	fs.StringVar(&o.WebhookCertDir, "webhook-cert-dir", o.WebhookCertDir, "directory with tls.crt and tls.key of the webhook server (reloaded on change)")
	fs.StringVar(&o.ClusterResourceNamespace, "cluster-resource-namespace", o.ClusterResourceNamespace, "namespace of Secrets and ServiceAccounts referenced by VaultClusterIssuers")
	fs.StringVar(&o.VaultAddr, "vault-addr", o.VaultAddr, "Vault address used by the custody components")
	fs.StringVar(&o.VaultCAFile, "vault-ca-file", o.VaultCAFile, "PEM CA bundle for Vault's TLS certificate")
	fs.StringVar(&o.VaultNamespace, "vault-namespace", o.VaultNamespace, "Vault namespace (X-Vault-Namespace) of the custody mount")
	fs.StringVar(&o.VaultAuthMount, "vault-auth-mount", o.VaultAuthMount, "Kubernetes auth mount the custody components log in with")
	fs.StringVar(&o.VaultCustodyRole, "vault-custody-role", o.VaultCustodyRole, "Vault role of the custody writer (scrub webhook, watcher)")
	fs.StringVar(&o.VaultGuardRole, "vault-guard-role", o.VaultGuardRole, "Vault role of the custody guard (reads record descriptions and metadata, never a key)")
	fs.StringVar(&o.VaultAudience, "vault-audience", o.VaultAudience, "audience of the ServiceAccount tokens presented to Vault")
	fs.StringVar(&o.ServiceAccountNamespace, "service-account-namespace", o.ServiceAccountNamespace, "namespace of Keyward's own ServiceAccount")
	fs.StringVar(&o.ServiceAccountName, "service-account-name", o.ServiceAccountName, "Keyward's own ServiceAccount, whose tokens log in to Vault")
	fs.StringVar(&o.CustodyMount, "custody-mount", o.CustodyMount, "Vault KV v2 mount holding custody records")
	fs.StringVar(&o.CustodyPrefix, "custody-prefix", o.CustodyPrefix, "path prefix of custody records inside the mount")
	fs.StringVar(&o.CustodyStore, "custody-store", o.CustodyStore, "where custody records live: vault, aws (Secrets Manager), gcp (Secret Manager) or azure (Key Vault)")
	fs.StringVar(&o.AWSRegion, "aws-region", o.AWSRegion, "custody-store aws: the region of Secrets Manager")
	fs.StringVar(&o.AWSEndpoint, "aws-endpoint", o.AWSEndpoint, "custody-store aws: endpoint URL override (a VPC endpoint)")
	fs.StringVar(&o.AWSGuardRoleARN, "aws-guard-role-arn", o.AWSGuardRoleARN, "custody-store aws: IAM role the guard assumes (DescribeSecret only)")
	fs.StringVar(&o.GCPProject, "gcp-project", o.GCPProject, "custody-store gcp: the project holding the secrets")
	fs.StringVar(&o.GCPEndpoint, "gcp-endpoint", o.GCPEndpoint, "custody-store gcp: endpoint host:port override (Private Service Connect)")
	fs.StringVar(&o.GCPGuardServiceAccount, "gcp-guard-service-account", o.GCPGuardServiceAccount, "custody-store gcp: service account the guard impersonates (secrets.get only)")
	fs.StringVar(&o.AzureVaultURL, "azure-vault-url", o.AzureVaultURL, "custody-store azure: the key vault URL (https://<name>.vault.azure.net/)")
	fs.StringVar(&o.AzureGuardClientID, "azure-guard-client-id", o.AzureGuardClientID, "custody-store azure: client ID of the workload identity the guard uses (secret metadata only)")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "this cluster's name in custody paths (<prefix>/<cluster-name>/<namespace>/<secret>); empty: <prefix>/<namespace>/<secret>")
	fs.StringVar(&o.VaultAdoptRole, "vault-adopt-role", o.VaultAdoptRole, "Kubernetes auth role that reads other clusters' custody records for adoption; empty disables adoption")
	fs.IntVar(&o.CustodyMaxVersions, "custody-max-versions", o.CustodyMaxVersions, fmt.Sprintf("versions kept per custody record (1..%d); with Vault, the custody mount's max_versions, which Keyward sets at start-up when it differs", vaultkv.MaxVersionsLimit))
	fs.DurationVar(&o.CustodyWriteTimeout, "custody-write-timeout", o.CustodyWriteTimeout, "bound on one custody write on the admission path")
	fs.BoolVar(&o.RedactCertificates, "redact-certificates", o.RedactCertificates, "strict mode: move certificates to Vault too (namespace label keyward.io/redact-certificates overrides)")
	fs.DurationVar(&o.CustodyAuditPeriod, "custody-audit-period", o.CustodyAuditPeriod, "how often every placeholder Secret is checked for its custody record, with one listing of the store per custody namespace (0: never)")
	fs.BoolVar(&o.CustodyAuditReadRecords, "custody-audit-read-records", o.CustodyAuditReadRecords, "make the audit read every placeholder's record metadata (one store call per placeholder) instead of one listing per namespace: also finds a deleted current version or a record describing another key")
	fs.IntVar(&o.CustodyWatcherWorkers, "custody-watcher-workers", o.CustodyWatcherWorkers, "Secrets the watcher scrubs concurrently")
	fs.StringVar(&o.CustodyNamespaceSelector, "custody-namespace-selector", o.CustodyNamespaceSelector, "label selector of namespaces whose TLS Secrets are kept in custody")
	fs.StringSliceVar(&o.WatchNamespaces, "watch-namespaces", o.WatchNamespaces, "comma-separated namespaces whose Secrets, Certificates and requests are watched (empty: all)")
	fs.DurationVar(&o.IssuerHealthPeriod, "issuer-health-period", o.IssuerHealthPeriod, "how often a Ready issuer's Vault and login are re-checked (a not-Ready one is retried with backoff up to 10s)")
	fs.StringVar(&o.RevocationConfigMap, "revocation-configmap", o.RevocationConfigMap, "ConfigMap in the leader election namespace holding pending certificate revocations")
	fs.BoolVar(&o.EnableIssuer, "enable-issuer", o.EnableIssuer, "run the VaultIssuer/VaultClusterIssuer controllers")
	fs.BoolVar(&o.EnableCustody, "enable-custody", o.EnableCustody, "run the custody webhooks and watcher")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "log format: json or text")
	fs.IntVarP(&o.Verbosity, "v", "v", o.Verbosity, "log verbosity (1: decisions, 2: chatter)")
	fs.Float64Var(&o.MemoryLimitRatio, "memory-limit-ratio", o.MemoryLimitRatio, "share of the container's (cgroup's) memory limit set as the Go runtime's soft memory limit, so the garbage collector works harder before the OOM killer would (0: off; GOMEMLIMIT, when set, wins)")
}

// Complete loads the config file, then re-applies the flags that were set
// explicitly on the command line, so they win over the file.
func (o *Options) Complete(fs *pflag.FlagSet) error {
	if o.ConfigFile == "" {
		return nil
	}
	data, err := os.ReadFile(o.ConfigFile)
	if err != nil {
		return fmt.Errorf("reading config file %s: %w", o.ConfigFile, err)
	}
	fromFile := NewOptions()
	if err := yaml.UnmarshalStrict(data, fromFile); err != nil {
		return fmt.Errorf("config file %s: %w", o.ConfigFile, err)
	}
	explicit := map[string]string{}
	fs.Visit(func(f *pflag.Flag) { explicit[f.Name] = f.Value.String() })
	fromFile.ConfigFile = o.ConfigFile
	*o = *fromFile
	rebound := pflag.NewFlagSet("explicit", pflag.ContinueOnError)
	o.AddFlags(rebound)
	for name, value := range explicit {
		if err := rebound.Set(name, value); err != nil {
			return fmt.Errorf("flag --%s: %w", name, err)
		}
	}
	return nil
}

// Validate names the first bad field.
func (o *Options) Validate() error {
	var errs []error
	if o.LeaderElect && (o.RetryPeriod <= 0 || float64(o.RenewDeadline) <= 1.2*float64(o.RetryPeriod) || o.LeaseDuration <= o.RenewDeadline) {
		errs = append(errs, fmt.Errorf("leader election: need leaseDuration (%s) > renewDeadline (%s) > 1.2 × retryPeriod (%s)", o.LeaseDuration, o.RenewDeadline, o.RetryPeriod))
	}
	if o.WebhookPort <= 0 || o.WebhookPort > 65535 {
		errs = append(errs, fmt.Errorf("webhookPort: %d is not a port", o.WebhookPort))
	}
	if o.ClusterResourceNamespace == "" {
		errs = append(errs, errors.New("clusterResourceNamespace: required"))
	}
	if o.EnableIssuer && (o.IssuerHealthPeriod < 10*time.Second || o.IssuerHealthPeriod > 24*time.Hour) {
		errs = append(errs, fmt.Errorf("issuerHealthPeriod: %s not in 10s..24h", o.IssuerHealthPeriod))
	}
	if o.EnableIssuer && (o.RevocationConfigMap == "" || o.LeaderElectionNS == "") {
		errs = append(errs, errors.New("revocationConfigMap and leaderElectionNamespace: required when the issuer is enabled (pending revocations live there)"))
	}
	if o.EnableCustody {
		errs = append(errs, o.validateCustody()...)
	}
	for _, ns := range o.WatchNamespaces {
		if ns == "" || strings.ContainsAny(ns, "/ ") {
			errs = append(errs, fmt.Errorf("watchNamespaces: %q is not a namespace name", ns))
		}
	}
	if o.LogFormat != "json" && o.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("logFormat: %q is neither json nor text", o.LogFormat))
	}
	if o.MemoryLimitRatio < 0 || o.MemoryLimitRatio > 1 {
		errs = append(errs, fmt.Errorf("memoryLimitRatio: %v is not between 0 and 1", o.MemoryLimitRatio))
	}
	return errors.Join(errs...)
}

// UnmarshalJSON reads a config file (as JSON, after YAML conversion):
// durations are written as strings ("30s"), and unknown fields are errors
// that name the field.
func (o *Options) UnmarshalJSON(b []byte) error {
	type plain Options
	aux := struct {
		*plain
		CustodyWriteTimeout *metav1.Duration `json:"custodyWriteTimeout"`
		CustodyAuditPeriod  *metav1.Duration `json:"custodyAuditPeriod"`
	}{plain: (*plain)(o)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if aux.CustodyWriteTimeout != nil {
		o.CustodyWriteTimeout = aux.CustodyWriteTimeout.Duration
	}
	if aux.CustodyAuditPeriod != nil {
		o.CustodyAuditPeriod = aux.CustodyAuditPeriod.Duration
	}
	return nil
}

// validateCustody checks the custody options: those of every store, then
// the chosen store's.
func (o *Options) validateCustody() []error {
	var errs []error
	if o.ClusterName != "" {
		if err := custody.ValidateClusterName(o.ClusterName); err != nil {
			errs = append(errs, fmt.Errorf("clusterName: %w", err))
		}
	}
	if o.CustodyWatcherWorkers < 1 || o.CustodyWatcherWorkers > 64 {
		errs = append(errs, fmt.Errorf("custodyWatcherWorkers: %d not in 1..64", o.CustodyWatcherWorkers))
	}
	if o.CustodyMaxVersions < 1 || o.CustodyMaxVersions > vaultkv.MaxVersionsLimit {
		errs = append(errs, fmt.Errorf("custodyMaxVersions: %d not in 1..%d", o.CustodyMaxVersions, vaultkv.MaxVersionsLimit))
	}
	if o.CustodyWriteTimeout <= 0 || o.CustodyWriteTimeout > 25*time.Second {
		errs = append(errs, fmt.Errorf("custodyWriteTimeout: %s not in (0, 25s] (the webhook itself times out at 30s)", o.CustodyWriteTimeout))
	}
	if o.CustodyAuditPeriod < 0 {
		errs = append(errs, fmt.Errorf("custodyAuditPeriod: %s is negative", o.CustodyAuditPeriod))
	}
	if o.VaultAdoptRole != "" && o.CustodyStore != StoreVault {
		errs = append(errs, fmt.Errorf("vaultAdoptRole: adoption reads Vault records; custodyStore is %s", o.CustodyStore))
	}
	switch o.CustodyStore {
	case StoreVault:
		errs = append(errs, o.validateVaultStore()...)
	case StoreAWS:
		if o.AWSRegion == "" {
			errs = append(errs, errors.New("awsRegion: required with custodyStore aws"))
		}
	case StoreGCP:
		if o.GCPProject == "" {
			errs = append(errs, errors.New("gcpProject: required with custodyStore gcp"))
		}
	case StoreAzure:
		if u, err := url.Parse(o.AzureVaultURL); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("azureVaultURL: %q is not an https URL (https://<name>.vault.azure.net/)", o.AzureVaultURL))
		}
	default:
		errs = append(errs, fmt.Errorf("custodyStore: %q is none of vault, aws, gcp, azure", o.CustodyStore))
	}
	return errs
}

// validateVaultStore checks what the Vault KV v2 store needs.
func (o *Options) validateVaultStore() []error {
	var errs []error
	if o.VaultAddr == "" {
		errs = append(errs, errors.New("vaultAddr: required when custody is enabled"))
	} else if u, err := url.Parse(o.VaultAddr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("vaultAddr: %q is not an http(s) URL", o.VaultAddr))
	}
	if o.CustodyMount == "" || strings.Contains(o.CustodyMount, "/") {
		errs = append(errs, fmt.Errorf("custodyMount: %q must be a single path segment", o.CustodyMount))
	}
	if o.VaultAdoptRole != "" && o.ClusterName == "" {
		errs = append(errs, errors.New("vaultAdoptRole: adoption needs clusterName (records of two clusters must live apart)"))
	}
	if o.ServiceAccountNamespace == "" || o.ServiceAccountName == "" {
		errs = append(errs, errors.New("serviceAccountNamespace/serviceAccountName: required when custody is enabled"))
	}
	return errs
}
