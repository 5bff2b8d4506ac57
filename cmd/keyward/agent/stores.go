// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-logr/logr"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/awssm"
	"github.com/keyward-io/keyward/custody/azkv"
	"github.com/keyward-io/keyward/custody/gcpsm"
	"github.com/keyward-io/keyward/delivery"
)

// Custody stores (--custody-store), as Keyward's.
const (
	StoreVault = "vault"
	StoreAWS   = "aws"
	StoreGCP   = "gcp"
	StoreAzure = "azure"
)

// validateStore checks the flags of the chosen custody store.
func (o *Options) validateStore() []error {
	var errs []error
	switch o.CustodyStore {
	case StoreVault:
		if o.VaultServer == "" {
			errs = append(errs, errors.New("--vault-server is required"))
		}
	case StoreAWS:
		if o.AWSRegion == "" {
			errs = append(errs, errors.New("--aws-region is required with --custody-store aws"))
		}
	case StoreGCP:
		if o.GCPProject == "" {
			errs = append(errs, errors.New("--gcp-project is required with --custody-store gcp"))
		}
	case StoreAzure:
		if o.AzureVaultURL == "" {
			errs = append(errs, errors.New("--azure-vault-url is required with --custody-store azure"))
		}
	default:
		errs = append(errs, fmt.Errorf("--custody-store %q: use vault, aws, gcp or azure", o.CustodyStore))
	}
	return errs
}

// StoreReader is the custody reader of the shared flags. On Vault it comes
// with its session (not logged in yet: its Run does; the reader logs in
// again on a 403); on a cloud store the session is nil and the reader uses
// the pod's own cloud identity. Call the returned func when done.
func (o *Options) StoreReader(ctx context.Context, log logr.Logger) (*delivery.VaultSession, delivery.Reader, func(), error) {
	prefix := custody.ClusterPrefix(o.CustodyPrefix, o.ClusterName)
	switch o.CustodyStore {
	case StoreVault:
		session, reader, err := vaultReader(o, log)
		return session, reader, func() {}, err
	case StoreAWS:
		r, err := awssm.NewReader(ctx, awssm.Options{Region: o.AWSRegion, Endpoint: o.AWSEndpoint, Prefix: prefix})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("custody reader (aws): %w", err)
		}
		return nil, delivery.NewStoreReader(r), func() {}, nil
	case StoreGCP:
		r, err := gcpsm.NewReader(ctx, gcpsm.Options{Project: o.GCPProject, Prefix: prefix, Endpoint: o.GCPEndpoint})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("custody reader (gcp): %w", err)
		}
		return nil, delivery.NewStoreReader(r), func() { _ = r.Close() }, nil
	case StoreAzure:
		r, err := azkv.NewReader(azkv.Options{VaultURL: o.AzureVaultURL, Prefix: prefix})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("custody reader (azure): %w", err)
		}
		return nil, delivery.NewStoreReader(r), func() {}, nil
	default:
		return nil, nil, nil, fmt.Errorf("--custody-store %q: unknown", o.CustodyStore)
	}
}
