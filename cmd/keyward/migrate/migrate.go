// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package migrate is `keyward migrate-custody`: it moves a cluster's custody
// records from Vault KV v2 to a cloud secret manager without re-keying
// (adopt.Migration), for an operator, with Keyward stopped.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/adopt"
	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/custody"
)

// Usage is the command's help text.
const Usage = `Moves the custody records of the placeholder Secrets in the given namespaces
from Vault KV v2 to the cloud store named by --custody-store, key and
certificate unchanged, and points each placeholder at its copy. Stop Keyward
first (kubectl -n keyward-system scale deploy/keyward --replicas=0), run this,
then start Keyward and the agents with the new --custody-store. A placeholder
whose Vault record does not match it is skipped and listed: its Certificate
is issued again into the new store once Keyward runs on it.

Vault: VAULT_ADDR (or --vault-addr) and VAULT_TOKEN, a token that may read
custody data (Keyward's own roles cannot). The cloud store: the flags below,
with the custody writer's credentials from the SDK's default chain.

`

// Main runs the command and returns its exit code (0 done, 1 something
// skipped or failed, 2 usage).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := app.NewOptions()
	fs := pflag.NewFlagSet("keyward migrate-custody", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o.AddFlags(fs)
	var kubeconfig string
	var namespaces []string
	var dryRun bool
	fs.StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster (default $KUBECONFIG)")
	fs.StringSliceVarP(&namespaces, "namespace", "n", nil, "custody namespaces to migrate (repeat or comma-separate)")
	fs.BoolVar(&dryRun, "dry-run", false, "check and list what would move; write nothing")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: keyward migrate-custody -n NAMESPACE --custody-store aws|gcp|azure [flags]\n\n"+Usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.VaultAddr == "" {
		o.VaultAddr = os.Getenv("VAULT_ADDR")
	}
	if len(namespaces) == 0 || o.CustodyStore == app.StoreVault || o.VaultAddr == "" || os.Getenv("VAULT_TOKEN") == "" {
		fmt.Fprintln(stderr, "keyward migrate-custody: need -n, a cloud --custody-store, VAULT_ADDR and VAULT_TOKEN")
		return 2
	}
	moved, err := run(ctx, o, kubeconfig, namespaces, dryRun)
	problems := 0
	for _, m := range moved {
		if m.Skipped != "" {
			problems++
			fmt.Fprintf(stdout, "SKIPPED %s/%s: %s\n", m.Namespace, m.Name, m.Skipped)
			continue
		}
		fmt.Fprintf(stdout, "moved %s/%s: %s -> %s\n", m.Namespace, m.Name, m.From, m.To)
	}
	if err != nil {
		fmt.Fprintln(stderr, "keyward migrate-custody:", err)
		return 1
	}
	if problems > 0 {
		return 1
	}
	return 0
}

func run(ctx context.Context, o *app.Options, kubeconfig string, namespaces []string, dryRun bool) ([]adopt.Moved, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	kc, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	vcfg := vaultapi.DefaultConfig()
	vcfg.Address = o.VaultAddr
	if o.VaultCAFile != "" {
		if err := vcfg.ConfigureTLS(&vaultapi.TLSConfig{CACert: o.VaultCAFile}); err != nil {
			return nil, fmt.Errorf("vault CA file: %w", err)
		}
	}
	vc, err := vaultapi.NewClient(vcfg)
	if err != nil {
		return nil, err
	}
	vc.SetToken(strings.TrimSpace(os.Getenv("VAULT_TOKEN")))
	from, err := app.NewVaultSource(vc, o.CustodyMount, custody.ClusterPrefix(o.CustodyPrefix, o.ClusterName))
	if err != nil {
		return nil, err
	}
	to, closeTo, err := app.OpenCloudWriter(ctx, o)
	if err != nil {
		return nil, err
	}
	defer closeTo()
	m := adopt.Migration{From: from, To: to, Secrets: kc, DryRun: dryRun}
	return m.Migrate(ctx, namespaces)
}
