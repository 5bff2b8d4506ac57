// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"context"
	"slices"
	"strings"
	"testing"

	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	fake "github.com/keyward-io/keyward/internal/cloudfake/gcpsm"
)

// TestList: List pages through ListSecrets with the namespace's name
// filter, keeps only this prefix's records of the namespace (a secret whose
// ID merely contains the filter, or a hashed ID whose annotation does not
// hash to it, is left out), retries throttling, and is the writer's alone.
func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	long := strings.Repeat("x", 200) + "." + strings.Repeat("y", 52)
	for _, n := range []string{"web", "api.example.com", long} {
		if _, err := e.writer.Put(ctx, record("shop", n, "K"), 0); err != nil {
			t.Fatal(err)
		}
	}
	admin := newStore(t, optsFor(e.srv, "admin-token"))
	forged := secretID("tls_test", "shop", strings.Repeat("z", 253))
	for id, ann := range map[string]map[string]string{
		"other_tls_test_shop_web":                   nil,                         // contains the filter
		"tls_test_shop-eu_web":                      nil,                         // a namespace extending this one
		"tls_test_shop__" + strings.Repeat("0", 64): {annRecord: "shop/" + long}, // annotation for another hash
		forged: {annRecord: "other/" + strings.Repeat("z", 253)}, // annotation of another namespace
	} {
		_, err := admin.client.CreateSecret(ctx, &smpb.CreateSecretRequest{
			Parent: "projects/" + testProject, SecretId: id, Secret: &smpb.Secret{Annotations: ann},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.srv.Throttle(2)
	before := e.srv.Calls(fake.MListSecrets)
	got, err := e.writer.List(ctx, "shop")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.Sort(got)
	if want := []string{"api.example.com", "web", long}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	// 6 secrets match the filter, two a page: 3 pages after 2 throttled calls.
	if n := e.srv.Calls(fake.MListSecrets) - before; n != 5 {
		t.Errorf("List made %d ListSecrets calls, want 5", n)
	}
	if _, err := e.guard.List(ctx, "shop"); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("guard List: %v, want PermissionDenied", err)
	}
	// A writer conditioned on the records' name prefix cannot list: the
	// permission is checked on the project (deploy/gcp).
	e.srv.AddIdentity("conditioned-writer", fake.Identity{Methods: fake.Writer(), SecretPrefix: "projects/" + testProject + "/secrets/tls_test_"})
	if _, err := newStore(t, optsFor(e.srv, "conditioned-writer")).List(ctx, "shop"); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("conditioned writer List: %v, want PermissionDenied", err)
	}
}

// TestFakeListSecretsFilter: the fake refuses filters and tokens it does
// not understand rather than ignore them.
func TestFakeListSecretsFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := newStore(t, optsFor(e.srv, "admin-token"))
	for _, f := range []string{"name ~ \"tls.*\"", "name:a OR name:b", "create_time>2021-01-01T00:00:00Z", "labels.Bad=x"} {
		it := admin.client.ListSecrets(context.Background(), &smpb.ListSecretsRequest{Parent: "projects/" + testProject, Filter: f})
		if _, err := it.Next(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("filter %q: %v, want InvalidArgument", f, err)
		}
	}
	it := admin.client.ListSecrets(context.Background(), &smpb.ListSecretsRequest{Parent: "projects/" + testProject, PageToken: "bogus"})
	if _, err := it.Next(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bogus page token: %v, want InvalidArgument", err)
	}
}
