// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	fake "github.com/keyward-io/keyward/internal/cloudfake/awssm"
)

// TestList: List pages through ListSecrets (empty filtered pages included),
// keeps only this prefix's records of the namespace whatever else matches
// the name filter's neighbourhood, leaves out secrets scheduled for
// deletion, retries throttling, and is the writer's alone.
func TestList(t *testing.T) {
	srv := startFake(t)
	ctx := context.Background()
	w := newStore(t, optsFor(srv, writerKey, "tls/prod"))
	for _, n := range []string{"web", "api", "db", "mail"} {
		if _, err := w.Put(ctx, record("shop", n, "K-"+n), 0); err != nil {
			t.Fatal(err)
		}
	}
	root := rawClient(srv, rootKey)
	for _, n := range []string{
		"tls/prod/shop-eu/web", // a namespace extending this one
		"TLS/prod/shop/upper",  // the name filter is case-sensitive
		"tls/prod/shop/a/b",    // not a record name
		"tls/prodx/shop/web",   // another prefix
		"tls/prod/shop/gone",   // scheduled for deletion
	} {
		if _, err := root.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := root.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("tls/prod/shop/gone")}); err != nil {
		t.Fatal(err)
	}
	srv.Throttle(2)
	before := srv.Calls(fake.OpListSecrets)
	got, err := w.List(ctx, "shop")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.Sort(got)
	if want := []string{"api", "db", "mail", "web"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	// 8 secrets not scheduled for deletion, two a page: 4 pages, after
	// the 2 throttled attempts.
	if n := srv.Calls(fake.OpListSecrets) - before; n != 6 {
		t.Errorf("List made %d ListSecrets calls, want 6 (2 throttled, 4 pages)", n)
	}
	_, err = newStore(t, optsFor(srv, guardKey, "tls/prod")).List(ctx, "shop")
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") || !strings.Contains(err.Error(), "deploy/aws") {
		t.Errorf("guard List: %v, want AccessDeniedException pointing at deploy/aws", err)
	}
	noSecret(t, err)
}

// TestFakeListSecretsValidation: the fake refuses what the API reference
// says ListSecrets refuses.
func TestFakeListSecretsValidation(t *testing.T) {
	srv := startFake(t)
	c := rawClient(srv, rootKey)
	for _, tc := range []struct {
		in   secretsmanager.ListSecretsInput
		code string
	}{
		{secretsmanager.ListSecretsInput{MaxResults: aws.Int32(101)}, "ValidationException"},
		{secretsmanager.ListSecretsInput{MaxResults: aws.Int32(0)}, "ValidationException"},
		{secretsmanager.ListSecretsInput{NextToken: aws.String("bogus")}, "InvalidNextTokenException"},
		{secretsmanager.ListSecretsInput{Filters: []smtypes.Filter{{Key: "name", Values: []string{"a#b"}}}}, "ValidationException"},
		{secretsmanager.ListSecretsInput{Filters: []smtypes.Filter{{Key: "name"}}}, "ValidationException"},
	} {
		_, err := c.ListSecrets(context.Background(), &tc.in)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
			t.Errorf("ListSecrets(%+v): %v, want %s", tc.in, err, tc.code)
		}
	}
}
