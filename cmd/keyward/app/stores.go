// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package app

import (
	"context"
	"fmt"

	"google.golang.org/api/impersonate"
	"google.golang.org/api/option"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/awssm"
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

// OpenCloudWriter opens the cloud custody store o names with the custody
// writer's identity (`keyward migrate-custody` writes with it). Call the
// returned func when done.
func OpenCloudWriter(ctx context.Context, o *Options) (custody.Store, func(), error) {
	if o.CustodyStore == StoreVault {
		return nil, nil, fmt.Errorf("custody store %q is not a cloud store", o.CustodyStore)
	}
	keep := *o
	keep.AWSGuardRoleARN, keep.GCPGuardServiceAccount, keep.AzureGuardClientID = "", "", ""
	st, err := openCloudStores(ctx, &keep)
	closeAll := func() {
		for _, c := range st.closers {
			c()
		}
	}
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return st.writer, closeAll, nil
}

// openCloudStores opens a cloud custody store twice: for the custody writer
// with the pod's own identity, and for the guard with its metadata-only
// identity when one is configured.
func openCloudStores(ctx context.Context, o *Options) (custodyStores, error) {
	var st custodyStores
	var err error
	prefix := custody.ClusterPrefix(o.CustodyPrefix, o.ClusterName)
	switch o.CustodyStore {
	case StoreAWS:
		st, err = openAWSStores(ctx, o, prefix)
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

// openAWSStores opens Secrets Manager with the SDK's default credential
// chain (IRSA or EKS Pod Identity) for the writer; the guard assumes its
// own role, allowed DescribeSecret only, when one is configured.
func openAWSStores(ctx context.Context, o *Options, prefix string) (custodyStores, error) {
	var st custodyStores
	opts := awssm.Options{Region: o.AWSRegion, Endpoint: o.AWSEndpoint, Prefix: prefix, MaxVersions: o.CustodyMaxVersions}
	w, err := awssm.New(ctx, opts)
	if err != nil {
		return st, fmt.Errorf("custody store (aws): %w", err)
	}
	st.writer, st.guard = w, w
	if o.AWSGuardRoleARN == "" {
		return st, nil
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(o.AWSRegion))
	if err != nil {
		return st, fmt.Errorf("guard custody store (aws): loading the pod's credentials: %w", err)
	}
	gopts := opts
	gopts.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), o.AWSGuardRoleARN,
		func(ao *stscreds.AssumeRoleOptions) { ao.RoleSessionName = "keyward-guard" }))
	if st.guard, err = awssm.New(ctx, gopts); err != nil {
		return st, fmt.Errorf("guard custody store (aws): %w", err)
	}
	return st, nil
}
