// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	fake "github.com/keyward-io/keyward/internal/cloudfake/azkv"
)

// TestList: List pages through the vault's secrets, keeps only this
// prefix's records of the namespace (decoded case-insensitively; a hashed
// name only if its tags hash to it), leaves out soft-deleted records,
// retries throttling, and needs readMetadata on the vault: an identity
// assigned single secrets cannot list.
func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.srv.SetPurgeProtection(true) // Delete leaves "gone" soft-deleted
	long := strings.Repeat("x", 200) + "." + strings.Repeat("y", 52)
	for _, n := range []string{"web", "api.example.com", long, "gone"} {
		if _, err := e.writer.Put(ctx, record("shop", n, "K"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.writer.Delete(ctx, "shop", "gone"); err != nil {
		t.Fatal(err)
	}
	raw, err := azsecrets.NewClient(e.srv.VaultURL(), staticCred{token: "writer-token"},
		&azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: srvClient(e.srv)}})
	if err != nil {
		t.Fatal(err)
	}
	for name, tags := range map[string]map[string]*string{
		"tls-stest-sshop--eu-sweb":                     nil, // namespace shop-eu
		"tls-sother-sshop-sweb":                        nil, // another prefix
		"TLS-STEST-SSHOP-SUPPER":                       nil, // names compare case-insensitively: shop/upper
		"tls-stest-sshop-sbad-x":                       nil, // not an escape
		"tls-stest-s-h" + strings.Repeat("0", 64):      {tagNamespace: to.Ptr("shop"), tagName: to.Ptr(long)},
		secretName("tls-stest", "other", "x"+long[1:]): {tagNamespace: to.Ptr("other"), tagName: to.Ptr("x" + long[1:])},
	} {
		if _, err := raw.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr("v"), Tags: tags}, nil); err != nil {
			t.Fatal(err)
		}
	}
	e.srv.Throttle(2, "0")
	before := e.srv.Requests("GET list")
	got, err := e.writer.List(ctx, "shop")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.Sort(got)
	if want := []string{"api.example.com", "upper", "web", long}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	// 9 live secrets, two a page: 5 pages, after 2 throttled requests.
	if n := e.srv.Requests("GET list") - before; n != 7 {
		t.Errorf("List made %d requests, want 7", n)
	}
	e.srv.AddIdentity("single-secret", fake.Identity{Actions: fake.Writer(), Secrets: []string{"tls-stest-sshop-sweb"}})
	if _, err := newStore(t, optsFor(e.srv, "single-secret")).List(ctx, "shop"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("List by an identity assigned one secret: %v, want 403", err)
	}
	// readMetadata is one data action: the guard, which needs it for
	// version lists, can list too (deploy/azure README).
	if _, err := e.guard.List(ctx, "shop"); err != nil {
		t.Errorf("guard List: %v", err)
	}
}
