// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vaultkv_test

import (
	"context"
	"fmt"
	"path"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyward-io/keyward/custody/storetest"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/e2e/framework"
)

// agentPolicy lets a key reader read every record under the production
// prefix, as keyward-consumer does for its own namespaces.
const agentPolicy = "storetest-agent"

// TestConformance runs the store conformance suite against the real Vault
// dev server: the custody writer's policy for Store, the guard's
// (description and metadata, never data) for Meta, and a consumer-style read policy for Reader.
// Each case gets its own folder under tls/, as a cluster would.
func TestConformance(t *testing.T) {
	v := framework.VaultForTest(t)
	root, err := v.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := root.Sys().PutPolicyWithContext(ctx, agentPolicy, `path "custody/data/tls/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	clients := map[string]*vaultapi.Client{}
	for _, p := range []string{framework.PolicyCustodyWriter, framework.PolicyGuard, agentPolicy} {
		if clients[p], err = v.ClientForPolicies(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	var n atomic.Int32
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		prefix := fmt.Sprintf("tls/conformance-%d", n.Add(1))
		opts := vaultkv.Options{Prefix: prefix, Timeout: 10 * time.Second}
		store, err := vaultkv.New(clients[framework.PolicyCustodyWriter], opts)
		if err != nil {
			t.Fatal(err)
		}
		meta, err := vaultkv.New(clients[framework.PolicyGuard], opts)
		if err != nil {
			t.Fatal(err)
		}
		reader := func(c *vaultapi.Client) *vaultkv.Reader {
			r, err := vaultkv.NewReader(func() *vaultapi.Client { return c }, vaultkv.ReaderOptions{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		return storetest.Subject{
			Store: store, Meta: meta, MetaOnly: true,
			MetaReader:     reader(clients[framework.PolicyGuard]),
			Reader:         reader(clients[agentPolicy]),
			MaxRecordBytes: vaultkv.MaxRecordBytes,
			CAS:            storetest.CASStrict,
			Tear: func(t *testing.T, namespace, name string) {
				// A version Keyward did not write: data without a description.
				p := path.Join("custody/data", prefix, namespace, name)
				if _, err := root.Logical().WriteWithContext(context.Background(), p, map[string]any{"data": map[string]any{"tls.key": "torn"}}); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}
