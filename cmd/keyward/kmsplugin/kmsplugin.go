// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package kmsplugin is `keyward kms`: the Kubernetes KMS v2 plugin on
// Vault Transit (package kms) served on a unix socket for the
// kube-apiserver. It runs before the apiserver (a static pod on each
// control-plane node), so it never talks to the Kubernetes API: it logs in
// to Vault with AppRole (secret ID from a file) or a TLS client
// certificate, renews its token and logs in again when renewal is refused.
package kmsplugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	kmsservice "k8s.io/kms/pkg/service"

	"github.com/keyward-io/keyward/internal/httpserve"
	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/kms"
)

// Options are `keyward kms`'s flags.
type Options struct {
	Socket              string
	VaultServer         string
	VaultCAFile         string
	VaultTimeout        time.Duration
	Auth                string
	AuthMount           string
	RoleID              string
	SecretIDFile        string
	ClientCertFile      string
	ClientKeyFile       string
	CertRole            string
	TransitMount        string
	TransitKey          string
	GRPCTimeout         time.Duration
	MetricsAddr         string
	MaxReloginBackoff   time.Duration
	LogFormat           string
	Verbosity           int
	shutdownGracePeriod time.Duration
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		Socket:              "/var/run/keyward-kms/kms.sock",
		VaultTimeout:        kms.DefaultTimeout,
		Auth:                "approle",
		TransitMount:        kms.DefaultMount,
		TransitKey:          "kubernetes-secrets",
		GRPCTimeout:         5 * time.Second,
		MetricsAddr:         "127.0.0.1:9464",
		MaxReloginBackoff:   30 * time.Second,
		LogFormat:           "json",
		shutdownGracePeriod: 5 * time.Second,
	}
}

// AddFlags registers the flags on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Socket, "listen", o.Socket, "Unix socket the kube-apiserver's EncryptionConfiguration names (kms endpoint unix://<path>).")
	fs.StringVar(&o.VaultServer, "vault-server", o.VaultServer, "Vault's URL, e.g. https://vault.example.com:8200.")
	fs.StringVar(&o.VaultCAFile, "vault-ca-file", o.VaultCAFile, "PEM bundle trusted for Vault's TLS certificate (default: system roots).")
	fs.DurationVar(&o.VaultTimeout, "vault-timeout", o.VaultTimeout, "Bound on each Vault call; keep it under the EncryptionConfiguration's timeout (3s by default).")
	fs.StringVar(&o.Auth, "auth", o.Auth, "Vault auth method: approle or cert (TLS client certificate).")
	fs.StringVar(&o.AuthMount, "auth-mount", o.AuthMount, "Mount of the auth method (default: approle or cert).")
	fs.StringVar(&o.RoleID, "approle-role-id", o.RoleID, "AppRole role ID (not secret).")
	fs.StringVar(&o.SecretIDFile, "approle-secret-id-file", o.SecretIDFile, "File holding the AppRole secret ID, read at every login (so a rotated secret ID is picked up).")
	fs.StringVar(&o.ClientCertFile, "vault-client-cert", o.ClientCertFile, "TLS client certificate (PEM) for --auth cert.")
	fs.StringVar(&o.ClientKeyFile, "vault-client-key", o.ClientKeyFile, "TLS client key (PEM) for --auth cert.")
	fs.StringVar(&o.CertRole, "cert-role", o.CertRole, "Vault cert auth role to log in as (default: any matching role).")
	fs.StringVar(&o.TransitMount, "transit-mount", o.TransitMount, "Vault Transit mount.")
	fs.StringVar(&o.TransitKey, "transit-key", o.TransitKey, "Transit key wrapping the apiserver's DEK seeds.")
	fs.DurationVar(&o.GRPCTimeout, "grpc-timeout", o.GRPCTimeout, "gRPC connection timeout of the socket server.")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", o.MetricsAddr, "Address of /metrics, /livez and /readyz (empty: off).")
	fs.DurationVar(&o.MaxReloginBackoff, "max-relogin-backoff", o.MaxReloginBackoff, "Longest wait between failed Vault logins.")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "json or text.")
	fs.IntVarP(&o.Verbosity, "v", "v", o.Verbosity, "Log verbosity.")
}

// Validate checks the flags.
func (o *Options) Validate() error {
	var errs []error
	if o.Socket == "" {
		errs = append(errs, errors.New("--listen is required"))
	}
	if o.VaultServer == "" {
		errs = append(errs, errors.New("--vault-server is required"))
	}
	if o.TransitKey == "" || strings.Contains(o.TransitKey, "/") {
		errs = append(errs, fmt.Errorf("--transit-key %q must be one path segment", o.TransitKey))
	}
	switch o.Auth {
	case "approle":
		if o.RoleID == "" || o.SecretIDFile == "" {
			errs = append(errs, errors.New("--auth approle needs --approle-role-id and --approle-secret-id-file"))
		}
	case "cert":
		if o.ClientCertFile == "" || o.ClientKeyFile == "" {
			errs = append(errs, errors.New("--auth cert needs --vault-client-cert and --vault-client-key"))
		}
	default:
		errs = append(errs, fmt.Errorf("--auth %q: want approle or cert", o.Auth))
	}
	if o.VaultTimeout <= 0 || o.GRPCTimeout <= 0 {
		errs = append(errs, errors.New("--vault-timeout and --grpc-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// Run serves the plugin until ctx ends. The socket is served at once; Vault
// is logged in to in the background (with backoff), and until that works
// every call fails and Status reports why, so a bad secret ID or an
// unreachable Vault is visible in the apiserver's KMS health check.
func Run(ctx context.Context, o *Options, log logr.Logger, reg *prometheus.Registry) error {
	if err := o.Validate(); err != nil {
		return err
	}
	cfg, auth, err := o.vaultConfig()
	if err != nil {
		return err
	}
	reg = httpserve.Registry(reg)
	metrics, err := kms.NewMetrics(reg)
	if err != nil {
		return err
	}
	session, err := vault.NewSession(cfg, auth, vault.LoginOptions{Logger: log.WithName("vault"), MaxReloginBackoff: o.MaxReloginBackoff})
	if err != nil {
		return err
	}
	plugin, err := kms.New(session, kms.Options{Mount: o.TransitMount, Key: o.TransitKey, Timeout: o.VaultTimeout, Logger: log, Metrics: metrics})
	if err != nil {
		return err
	}
	// A socket left by a killed predecessor would make Listen fail.
	if err := os.Remove(o.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale socket %s: %w", o.Socket, err)
	}
	srv := kmsservice.NewGRPCService(o.Socket, o.GRPCTimeout, plugin)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		session.Run(ctx)
		return nil
	})
	g.Go(func() error {
		log.Info("serving the KMS v2 API", "socket", o.Socket, "transit", o.TransitMount+"/"+o.TransitKey, "vault", o.VaultServer, "auth", auth.String())
		if err := srv.ListenAndServe(); err != nil && ctx.Err() == nil {
			return fmt.Errorf("serving %s: %w", o.Socket, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		stopped := make(chan struct{})
		go func() { srv.Shutdown(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(o.shutdownGracePeriod):
			srv.Close()
		}
		return nil
	})
	if o.MetricsAddr != "" {
		serveMetrics(ctx, g, o.MetricsAddr, reg, plugin)
	}
	return g.Wait()
}

func (o *Options) vaultConfig() (vault.Config, vault.AuthMethod, error) {
	cfg := vault.Config{Server: o.VaultServer, Timeout: o.VaultTimeout}
	if o.VaultCAFile != "" {
		ca, err := os.ReadFile(o.VaultCAFile)
		if err != nil {
			return cfg, nil, fmt.Errorf("--vault-ca-file: %w", err)
		}
		cfg.CABundle = ca
	}
	if o.Auth == "cert" {
		cfg.ClientCertFile, cfg.ClientKeyFile = o.ClientCertFile, o.ClientKeyFile
		return cfg, &vault.CertAuth{MountPath: o.AuthMount, Role: o.CertRole}, nil
	}
	file := o.SecretIDFile
	return cfg, &vault.AppRoleAuth{MountPath: o.AuthMount, RoleID: o.RoleID, SecretID: func(context.Context) (string, error) {
		b, err := os.ReadFile(file)
		return string(b), err
	}}, nil
}

// serveMetrics serves /metrics, /livez (the process answers: the static
// pod's liveness probe, which must not restart the plugin because Vault is
// away) and /readyz (the plugin's own Status: 503 naming the cause when it
// cannot encrypt and decrypt) on addr until ctx ends.
func serveMetrics(ctx context.Context, g *errgroup.Group, addr string, reg *prometheus.Registry, p *kms.Plugin) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st, _ := p.Status(r.Context())
		if st.Healthz != kms.Healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "%s\nkey_id %s\n", st.Healthz, st.KeyID)
	})
	httpserve.Serve(ctx, g, addr, mux, "metrics")
}
