// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package app

import (
	"context"
	"fmt"

	"google.golang.org/api/impersonate"
	"google.golang.org/api/option"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/azkv"
	"github.com/keyward-io/keyward/custody/gcpsm"
)

// Custody stores (Options.CustodyStore).
const (
	StoreVault = "vault"
	StoreAWS   = "aws"
	StoreGCP   = "gcp"
	StoreAzure = "azure"
)

// openCloudStores opens a cloud custody store twice: for the custody writer
// with the pod's own identity, and for the guard with its metadata-only
// identity when one is configured.
func openCloudStores(ctx context.Context, o *Options) (custodyStores, error) {
	var st custodyStores
	var err error
	prefix := custody.ClusterPrefix(o.CustodyPrefix, o.ClusterName)
	switch o.CustodyStore {
	case StoreGCP:
		st, err = openGCPStores(ctx, o, prefix)
	case StoreAzure:
		st, err = openAzureStores(o, prefix)
	default:
		err = fmt.Errorf("custody store %q: unknown", o.CustodyStore)
	}
	return st, err
}

// gcpCloudPlatformScope is the OAuth scope Secret Manager calls need.
const gcpCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

func openGCPStores(ctx context.Context, o *Options, prefix string) (custodyStores, error) {
	var st custodyStores
	opts := gcpsm.Options{Project: o.GCPProject, Prefix: prefix, MaxVersions: o.CustodyMaxVersions, Endpoint: o.GCPEndpoint}
	w, err := gcpsm.New(ctx, opts)
	if err != nil {
		return st, fmt.Errorf("custody store (gcp): %w", err)
	}
	st.writer = w
	st.closers = append(st.closers, func() { _ = w.Close() })
	if o.GCPGuardServiceAccount == "" {
		st.guard = w
		return st, nil
	}
	ts, err := impersonate.CredentialsTokenSource(ctx, impersonate.CredentialsConfig{
		TargetPrincipal: o.GCPGuardServiceAccount, Scopes: []string{gcpCloudPlatformScope},
	})
	if err != nil {
		return st, fmt.Errorf("guard custody store (gcp): impersonating %s: %w", o.GCPGuardServiceAccount, err)
	}
	gopts := opts
	gopts.ClientOptions = []option.ClientOption{option.WithTokenSource(ts)}
	g, err := gcpsm.New(ctx, gopts)
	if err != nil {
		return st, fmt.Errorf("guard custody store (gcp): %w", err)
	}
	st.guard = g
	st.closers = append(st.closers, func() { _ = g.Close() })
	return st, nil
}

// openAzureStores opens Key Vault with the pod's default Azure credential
// (Workload Identity on AKS) for the writer, and with the guard's own
// workload identity client ID when one is configured.
func openAzureStores(o *Options, prefix string) (custodyStores, error) {
	var st custodyStores
	opts := azkv.Options{VaultURL: o.AzureVaultURL, Prefix: prefix, MaxVersions: o.CustodyMaxVersions}
	w, err := azkv.New(opts)
	if err != nil {
		return st, fmt.Errorf("custody store (azure): %w", err)
	}
	st.writer, st.guard = w, w
	if o.AzureGuardClientID == "" {
		return st, nil
	}
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientID: o.AzureGuardClientID})
	if err != nil {
		return st, fmt.Errorf("guard custody store (azure): workload identity %s: %w", o.AzureGuardClientID, err)
	}
	gopts := opts
	gopts.Credential = cred
	if st.guard, err = azkv.New(gopts); err != nil {
		return st, fmt.Errorf("guard custody store (azure): %w", err)
	}
	return st, nil
}
