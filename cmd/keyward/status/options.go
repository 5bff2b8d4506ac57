// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package status is `keyward status` (also `kubectl keyward status`): one
// row per cert-manager Certificate saying whether its key is in custody,
// whether Vault's current record agrees with the placeholder, what the
// custody guard last decided and which warnings matter. It reads the
// Kubernetes API (Certificates, Secrets, Events) and, when given Vault
// settings, only the custody records' metadata. It never prints key
// material or tokens.
package status

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
)

// Exit codes of Run.
const (
	// ExitOK: every Certificate is Ready, in custody and consistent with
	// its custody record (or the record was not checked).
	ExitOK = 0
	// ExitProblems: at least one row has a problem.
	ExitProblems = 1
	// ExitError: a usage error, or the Kubernetes API or Vault could not
	// be read.
	ExitError = 2
)

// Output formats.
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

// Usage is the text --help prints between the usage line and the flags.
const Usage = `Shows, for each cert-manager Certificate, whether its private key is held in
Vault custody: Ready, the target Secret's custody markers (record version, key
fingerprint, serial, scrubbed at/by), whether Vault's current record agrees
(its description only), notAfter and renewal time, the custody guard's last decision
and recent warnings. NAMEs select Certificates in the namespace.

Vault is checked when --vault-addr (or VAULT_ADDR) is set; the token is read
from VAULT_TOKEN only (it needs read on <mount>/subkeys/<prefix>/* and
<mount>/metadata/<prefix>/*, the
keyward-guard policy). Without Vault the store columns say "not checked".

Exit status: 0 when every Certificate is Ready, in custody and consistent;
1 when any row has a problem (Secret missing, key in the API, Opaque target,
custody record missing or not matching, not Ready); 2 on usage errors or when
the Kubernetes API or Vault cannot be read.

Flags:
`

// Options are `keyward status`'s flags.
type Options struct {
	Kubeconfig    string
	Context       string
	Namespace     string
	AllNamespaces bool
	// Names are the positional Certificate names.
	Names  []string
	Output string

	VaultAddr     string
	VaultCAFile   string
	CustodyMount  string
	CustodyPrefix string
	// ClusterName is Keyward's --cluster-name: records at
	// <prefix>/<cluster-name>/<namespace>/<secret>.
	ClusterName string
	// VaultToken comes from VAULT_TOKEN (NewOptions), never from a flag,
	// and is never printed.
	VaultToken string
	// Timeout bounds the whole run.
	Timeout time.Duration
	// Now is the time ages are measured from; zero means the clock.
	Now time.Time
}

// NewOptions returns the defaults, with VAULT_ADDR and VAULT_TOKEN taken
// from the environment.
func NewOptions() *Options {
	return &Options{
		Output:        OutputTable,
		VaultAddr:     os.Getenv("VAULT_ADDR"),
		VaultToken:    os.Getenv("VAULT_TOKEN"),
		CustodyMount:  vaultkv.DefaultMount,
		CustodyPrefix: vaultkv.DefaultPrefix,
		Timeout:       30 * time.Second,
	}
}

// AddFlags registers the flags on fs. Positional arguments are read by
// Parse.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file (default: KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&o.Context, "context", o.Context, "kubeconfig context (default: the current context)")
	fs.StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "namespace (default: the context's namespace, else default)")
	fs.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", o.AllNamespaces, "list Certificates in every namespace")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "output format: table or json")
	fs.StringVar(&o.VaultAddr, "vault-addr", o.VaultAddr, "Vault URL; empty: Vault is not checked (default VAULT_ADDR)")
	fs.StringVar(&o.VaultCAFile, "vault-ca-file", o.VaultCAFile, "PEM CA bundle trusted for Vault's TLS certificate (default: system roots)")
	fs.StringVar(&o.CustodyMount, "custody-mount", o.CustodyMount, "custody KV v2 mount")
	fs.StringVar(&o.CustodyPrefix, "custody-prefix", o.CustodyPrefix, "folder under the custody mount")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "the cluster name Keyward runs with (--cluster-name): records at <prefix>/<cluster-name>/<namespace>/<secret>; empty: <prefix>/<namespace>/<secret>")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "bound on the whole run")
}

// Parse parses args into o (flags and positional Certificate names).
func (o *Options) Parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Names = fs.Args()
	return nil
}

// Validate reports every configuration error at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Output != OutputTable && o.Output != OutputJSON {
		errs = append(errs, fmt.Errorf("-o %q: want table or json", o.Output))
	}
	if o.AllNamespaces && len(o.Names) > 0 {
		errs = append(errs, errors.New("Certificate names need one namespace: give -n, not -A"))
	}
	if o.VaultAddr != "" {
		if u, err := url.Parse(o.VaultAddr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--vault-addr %q is not an http(s) URL", o.VaultAddr))
		}
		if o.VaultToken == "" {
			errs = append(errs, errors.New("--vault-addr is set but VAULT_TOKEN is empty (the token is read from the environment only)"))
		}
	}
	if strings.Trim(o.CustodyMount, "/") == "" || strings.Trim(o.CustodyPrefix, "/") == "" {
		errs = append(errs, errors.New("--custody-mount and --custody-prefix must not be empty"))
	}
	if o.ClusterName != "" {
		if err := custody.ValidateClusterName(o.ClusterName); err != nil {
			errs = append(errs, fmt.Errorf("--cluster-name: %w", err))
		}
	}
	if o.Timeout <= 0 {
		errs = append(errs, errors.New("--timeout must be positive"))
	}
	return errors.Join(errs...)
}

// clientConfig loads the kubeconfig the way kubectl does: --kubeconfig,
// else KUBECONFIG, else ~/.kube/config; --context and -n override.
func (o *Options) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	if o.Namespace != "" {
		overrides.Context = clientcmdapi.Context{Namespace: o.Namespace}
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}
