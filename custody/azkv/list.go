// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"context"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/keyward-io/keyward/custody"
)

var _ custody.Lister = (*Store)(nil)

// List names the records of namespace: the vault's secret properties
// (NewListSecretPropertiesPager, GET /secrets; Key Vault has no server-side
// filter), following nextLink, each page bounded by Options.Timeout. Every
// name is decoded (RecordName; a hashed name through its newest version's
// keyward-namespace and keyward-name tags, checked against the hash) and
// kept only if it is a record of exactly this namespace under this store's
// prefix. Soft-deleted secrets are not listed. It needs the data action
// secrets/readMetadata/action on the vault (deploy/azure), which shows
// names and tags, never a value.
func (s *Store) List(ctx context.Context, namespace string) ([]string, error) {
	if err := custody.ValidateListNamespace(namespace); err != nil {
		return nil, err
	}
	pager := s.client.NewListSecretPropertiesPager(nil)
	names := []string{}
	for pager.More() {
		page, err := s.listPage(ctx, pager)
		if err != nil {
			return nil, fmt.Errorf("listing custody records of namespace %s: %w", namespace, callError("listing the secrets of", s.opts.VaultURL, err))
		}
		for _, p := range page.Value {
			if name, ok := s.listedName(p, namespace); ok {
				names = append(names, name)
			}
		}
	}
	return names, nil
}

// listPage fetches the next page within Options.Timeout.
func (s *Store) listPage(ctx context.Context, pager *runtime.Pager[azsecrets.ListSecretPropertiesResponse]) (azsecrets.ListSecretPropertiesResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	return pager.NextPage(ctx)
}

// listedName is the Secret name of the listed secret p if it is a record
// of namespace.
func (s *Store) listedName(p *azsecrets.SecretProperties, namespace string) (string, bool) {
	if p == nil || p.ID == nil {
		return "", false
	}
	sn := p.ID.Name()
	ns, name, hashed, err := s.RecordName(sn)
	if err != nil || (!hashed && ns != namespace) {
		return "", false
	}
	if hashed {
		tag := func(k string) string {
			if v := p.Tags[k]; v != nil {
				return *v
			}
			return ""
		}
		ns, name = tag(tagNamespace), tag(tagName)
		if ns != namespace || validName(ns, name) != nil || !strings.EqualFold(secretName(s.pe, ns, name), sn) {
			return "", false
		}
	}
	return name, true
}
