// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// vinfo is one Key Vault version as the store sees it.
type vinfo struct {
	id      string
	n       int // keyward-version, 0 if none
	enabled bool
	created time.Time
	tags    map[string]string
}

// versions is a secret's version list; exists is false for a secret that
// does not exist (or is soft-deleted).
type versions struct {
	exists bool
	items  []vinfo
	max    int
}

// current returns the enabled versions tagged with the highest tag:
// none (absent), one, or more (a write race not yet settled), oldest first.
func (v versions) current() []vinfo {
	return v.tagged(v.max)
}

func (v versions) tagged(n int) []vinfo {
	var out []vinfo
	if n < 1 {
		return nil
	}
	for _, it := range v.items {
		if it.n == n && it.enabled {
			out = append(out, it)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.Before(out[j].created)
		}
		return out[i].id < out[j].id
	})
	return out
}

func (v versions) live() bool { return len(v.current()) > 0 }

// listVersions reads every version's properties (readMetadata only).
func listVersions(ctx context.Context, c *azsecrets.Client, name string) (versions, error) {
	pager := c.NewListSecretPropertiesVersionsPager(name, nil)
	out := versions{exists: true}
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if isStatus(err, 404) {
			return versions{}, nil
		}
		if err != nil {
			return versions{}, callError("listing versions of", name, err)
		}
		for _, p := range page.Value {
			out.items = append(out.items, toInfo(p))
		}
	}
	for _, it := range out.items {
		out.max = max(out.max, it.n)
	}
	return out, nil
}

func toInfo(p *azsecrets.SecretProperties) vinfo {
	it := vinfo{tags: map[string]string{}}
	if p.ID != nil {
		it.id = p.ID.Version()
	}
	if a := p.Attributes; a != nil {
		it.enabled = a.Enabled != nil && *a.Enabled
		if a.Created != nil {
			it.created = *a.Created
		}
	}
	for k, v := range p.Tags {
		if v != nil {
			it.tags[k] = *v
		}
	}
	if n, err := strconv.Atoi(it.tags[tagVersion]); err == nil && n > 0 {
		it.n = n
	}
	return it
}
