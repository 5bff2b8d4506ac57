// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/awssm"
	fake "github.com/keyward-io/keyward/internal/cloudfake/awssm"
)

// noSecret fails if err's text carries a record's key.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "S3CR3T") {
		t.Errorf("error carries key material: %v", err)
	}
}

func TestRegion(t *testing.T) {
	for _, r := range []string{"", "eu_west_1", "EU-WEST-1", "eu-west", "https://eu-west-1"} {
		_, err := awssm.New(context.Background(), awssm.Options{Region: r})
		if err == nil || !strings.Contains(err.Error(), "region") {
			t.Errorf("New with region %q: %v, want an error about the region", r, err)
		}
		if _, err := awssm.NewReader(context.Background(), awssm.Options{Region: r}); err == nil {
			t.Errorf("NewReader with region %q succeeded", r)
		}
	}
	// A well-formed region other than the endpoint's: AWS refuses the signature.
	srv := startFake(t)
	o := optsFor(srv, writerKey, "tls")
	o.Region = "us-east-2"
	_, err := newStore(t, o).Put(context.Background(), record("ns", "web", "one"), 0)
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") || !strings.Contains(err.Error(), "us-east-2") {
		t.Errorf("Put signed for another region: %v", err)
	}
	noSecret(t, err)
	if n := len(srv.SecretNames()); n != 0 {
		t.Errorf("%d secrets written", n)
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	o := awssm.Options{Region: region, Endpoint: "http://" + addr, Timeout: time.Second, MaxBackoff: 50 * time.Millisecond,
		Credentials: optsFor(&fake.Server{}, writerKey, "").Credentials}
	s := newStore(t, o)
	start := time.Now()
	_, err = s.Put(context.Background(), record("ns", "web", "one"), 0)
	if err == nil || errors.Is(err, custody.ErrConflict) || errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("Put to an unreachable endpoint: %v", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error does not name the endpoint: %v", err)
	}
	if _, err := s.Metadata(context.Background(), "ns", "web"); err == nil || errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Metadata from an unreachable endpoint: %v, want an error that is not ErrNotFound", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("two calls took %v with a 1s timeout", d)
	}
}

func TestAccessDenied(t *testing.T) {
	srv := startFake(t)
	ctx := context.Background()
	guard := newStore(t, optsFor(srv, guardKey, "tls"))
	_, err := guard.Put(ctx, record("ns", "web", "one"), 0)
	noSecret(t, err)
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") || !strings.Contains(err.Error(), "deploy/aws") {
		t.Errorf("Put with the guard's identity: %v", err)
	}
	writer := newStore(t, optsFor(srv, writerKey, "tls"))
	v, err := writer.Put(ctx, record("ns", "web", "one"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// The writer cannot read what it wrote; an agent limited to another prefix cannot either.
	for _, key := range []string{writerKey, guardKey} {
		_, err = newReader(t, optsFor(srv, key, "tls")).Read(ctx, "ns", "web", v)
		noSecret(t, err)
		if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
			t.Errorf("Read with %s: %v", key, err)
		}
	}
	unknown := optsFor(srv, "AKIAUNKNOWN", "tls")
	if _, err := newStore(t, unknown).Metadata(ctx, "ns", "web"); err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Errorf("Metadata with unknown credentials: %v", err)
	}
}

// TestThrottling: throttling is retried at most MaxAttempts times a
// request, then reported as such; a Put either completes or returns an
// error, and a record whose Put failed is never reported as written.
func TestThrottling(t *testing.T) {
	srv := startFake(t)
	ctx := context.Background()
	s := newStore(t, optsFor(srv, writerKey, "tls"))

	srv.Throttle(awssm.DefaultMaxAttempts - 1)
	if _, err := s.Put(ctx, record("ns", "retried", "one"), 0); err != nil {
		t.Fatalf("Put throttled %d times: %v", awssm.DefaultMaxAttempts-1, err)
	}

	srv.Throttle(1000)
	before := srv.Calls(fake.OpDescribeSecret)
	_, err := s.Put(ctx, record("ns", "refused", "one"), 0)
	if err == nil || !strings.Contains(err.Error(), "ThrottlingException") || !strings.Contains(err.Error(), fmt.Sprintf("after %d attempts", awssm.DefaultMaxAttempts)) {
		t.Fatalf("Put under throttling: %v", err)
	}
	if n := srv.Calls(fake.OpDescribeSecret) - before; n != awssm.DefaultMaxAttempts {
		t.Errorf("%d attempts, want %d", n, awssm.DefaultMaxAttempts)
	}
	srv.Throttle(0)
	if _, err := s.Metadata(ctx, "ns", "refused"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Metadata of the throttled record: %v, want ErrNotFound", err)
	}
	throttledBurst(t, srv, s)
}

// throttledBurst writes 20 records at once while the fake throttles 60
// calls: each Put ends, within bounded attempts, either written (and its
// metadata says so) or with a throttling error (and no confirmed metadata).
func throttledBurst(t *testing.T, srv *fake.Server, s *awssm.Store) {
	const records = 20
	ctx := context.Background()
	srv.Throttle(60)
	errs := make([]error, records)
	var wg sync.WaitGroup
	for i := range records {
		wg.Go(func() { _, errs[i] = s.Put(ctx, record("burst", fmt.Sprint("web-", i), fmt.Sprint(i)), 0) })
	}
	wg.Wait()
	srv.Throttle(0)
	failed := 0
	for i, err := range errs {
		noSecret(t, err)
		md, merr := s.Metadata(ctx, "burst", fmt.Sprint("web-", i))
		if err == nil {
			if merr != nil || md.Torn || md.CertificateName != fmt.Sprint("cert-", i) {
				t.Errorf("record %d written but Metadata = %+v, %v", i, md, merr)
			}
			continue
		}
		failed++
		if !strings.Contains(err.Error(), "ThrottlingException") {
			t.Errorf("record %d: %v, want a throttling error", i, err)
		}
		if merr == nil && !md.Torn {
			t.Errorf("record %d: Put failed but Metadata reports it written: %+v", i, md)
		}
	}
	t.Logf("burst of %d under 60 throttled calls: %d failed", records, failed)
}

// TestScheduledForDeletion: a secret an operator deleted by hand with a
// recovery window is not found, and writing it again says why it fails.
func TestScheduledForDeletion(t *testing.T) {
	srv := startFake(t)
	ctx := context.Background()
	s := newStore(t, optsFor(srv, writerKey, "tls"))
	if _, err := s.Put(ctx, record("ns", "web", "one"), 0); err != nil {
		t.Fatal(err)
	}
	_, err := rawClient(srv, rootKey).DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("tls/ns/web"), RecoveryWindowInDays: aws.Int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Metadata(ctx, "ns", "web"); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("Metadata of a secret scheduled for deletion: %v, want ErrNotFound", err)
	}
	_, err = s.Put(ctx, record("ns", "web", "two"), 0)
	if err == nil || !strings.Contains(err.Error(), "scheduled for deletion") {
		t.Errorf("Put over a secret scheduled for deletion: %v", err)
	}
}

// TestForeignVersion: a version written outside Keyward (console, CLI)
// becomes current without Keyward's token; Metadata says so rather than
// guess a version.
func TestForeignVersion(t *testing.T) {
	srv := startFake(t)
	ctx := context.Background()
	s := newStore(t, optsFor(srv, writerKey, "tls"))
	if _, err := s.Put(ctx, record("ns", "web", "one"), 0); err != nil {
		t.Fatal(err)
	}
	_, err := rawClient(srv, rootKey).PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("tls/ns/web"), SecretString: aws.String("by hand"), ClientRequestToken: aws.String("0f8fad5b-d9cb-469f-a165-70867728950e"),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Metadata(ctx, "ns", "web")
	if err == nil || errors.Is(err, custody.ErrNotFound) || !strings.Contains(err.Error(), "not written by keyward") {
		t.Errorf("Metadata over a foreign version: %v", err)
	}
}
