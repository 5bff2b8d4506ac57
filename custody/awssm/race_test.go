// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/awssm"
	fake "github.com/keyward-io/keyward/internal/cloudfake/awssm"
)

func record(namespace, name, tag string) custody.Record {
	return custody.Record{
		Namespace: namespace, Name: name,
		Key:         []byte("-----BEGIN PRIVATE KEY-----\nS3CR3T" + tag + "\n-----END PRIVATE KEY-----\n"),
		Certificate: []byte("cert " + tag), CA: []byte("ca " + tag),
		Meta: custody.Metadata{CertificateName: "cert-" + tag, Serial: "0a", KeySHA256: strings.Repeat("ab", 32),
			NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
	}
}

// TestTokenIsThePrecondition: a writer whose check passed, but whose
// PutSecretValue arrives after another writer wrote the same version,
// collides on the version's token and gets ErrConflict; nothing of it is
// written.
func TestTokenIsThePrecondition(t *testing.T) {
	srv := startFake(t)
	a := newStore(t, optsFor(srv, writerKey, "tls"))
	b := newStore(t, optsFor(srv, writerKey, "tls"))
	ctx := context.Background()
	v1, err := a.Put(ctx, record("ns", "web", "one"), 0)
	if err != nil {
		t.Fatal(err)
	}
	var bv int
	var berr error
	srv.OnCall(fake.OpPutSecretValue, func() { bv, berr = b.Put(ctx, record("ns", "web", "b"), v1) })
	_, err = a.Put(ctx, record("ns", "web", "a"), v1)
	if berr != nil || bv != v1+1 {
		t.Fatalf("interleaved writer: %d, %v", bv, berr)
	}
	if !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("writer whose check went stale: %v, want ErrConflict", err)
	}
	md, err := a.Metadata(ctx, "ns", "web")
	if err != nil || md.CertificateName != "cert-b" || md.Version != v1+1 || md.Torn {
		t.Fatalf("Metadata = %+v, %v; want writer b's version %d", md, err, v1+1)
	}
}

// TestResidualRace shows the race the package doc declares (why the store
// is CASBestEffort): a writer that stalls between its PutSecretValue and its
// TagResource while another writes the next version overwrites the newer
// tags with its own. Both writers succeed; Metadata then reports Torn, never
// the older version's fields as current, until the next write repairs it.
func TestResidualRace(t *testing.T) {
	srv := startFake(t)
	a := newStore(t, optsFor(srv, writerKey, "tls"))
	b := newStore(t, optsFor(srv, writerKey, "tls"))
	ctx := context.Background()
	v1, err := a.Put(ctx, record("ns", "web", "one"), 0)
	if err != nil {
		t.Fatal(err)
	}
	var bv int
	var berr error
	srv.OnCall(fake.OpTagResource, func() { bv, berr = b.Put(ctx, record("ns", "web", "b"), v1+1) })
	av, err := a.Put(ctx, record("ns", "web", "a"), v1)
	if err != nil || av != v1+1 || berr != nil || bv != v1+2 {
		t.Fatalf("writers: a %d, %v; b %d, %v", av, err, bv, berr)
	}
	md, err := a.Metadata(ctx, "ns", "web")
	if err != nil || md != (custody.Metadata{Version: bv, Torn: true}) {
		t.Fatalf("Metadata after the stale tags = %+v, %v; want only Version %d and Torn", md, err, bv)
	}
	v, err := a.Put(ctx, record("ns", "web", "repair"), bv)
	if err != nil {
		t.Fatal(err)
	}
	if md, err := a.Metadata(ctx, "ns", "web"); err != nil || md.Torn || md.Version != v || md.CertificateName != "cert-repair" {
		t.Fatalf("Metadata after the next write = %+v, %v", md, err)
	}
}

// TestBoundedVersions: only the newest MaxVersions versions stay labelled
// and readable; the secret never holds more staging labels than that plus
// AWSCURRENT and AWSPREVIOUS.
func TestBoundedVersions(t *testing.T) {
	srv := startFake(t)
	o := optsFor(srv, writerKey, "tls")
	o.MaxVersions = 3
	s := newStore(t, o)
	r := newReader(t, optsFor(srv, agentKey, "tls"))
	ctx := context.Background()
	v := 0
	for i := range 8 {
		var err error
		if v, err = s.Put(ctx, record("ns", "web", fmt.Sprint(i)), v); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= v; n++ {
		_, err := r.Read(ctx, "ns", "web", n)
		if kept := n > v-3; kept != (err == nil) || (!kept && !errors.Is(err, custody.ErrNotFound)) {
			t.Errorf("Read version %d of %d with MaxVersions 3: %v", n, v, err)
		}
	}
	out, err := rawClient(srv, rootKey).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.Path("ns", "web"))})
	if err != nil {
		t.Fatal(err)
	}
	labels := 0
	for _, st := range out.VersionIdsToStages {
		labels += len(st)
	}
	if labels != 3+2 {
		t.Errorf("%d staging labels on the secret (%v), want 5", labels, out.VersionIdsToStages)
	}
}

func TestOptionsBounds(t *testing.T) {
	for _, o := range []awssm.Options{
		{Region: region, MaxVersions: awssm.MaxVersionsLimit + 1},
		{Region: region, Prefix: "bad prefix"},
		{Region: region, Prefix: "a//b"},
		{Region: region, Prefix: strings.Repeat("p", awssm.MaxPrefixLength+1)},
	} {
		if _, err := awssm.New(context.Background(), o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	s, err := awssm.New(context.Background(), awssm.Options{Region: region, Prefix: "/keyward/tls/prod/"})
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Path("ns", "web"); p != "keyward/tls/prod/ns/web" {
		t.Errorf("Path = %q", p)
	}
	for _, p := range []string{"keyward/tls/prod/ns", "keyward/tls/prod/ns/a/b", "other/ns/web", "keyward/tls/prod/NS/web"} {
		if ns, name, err := s.ParsePath(p); err == nil {
			t.Errorf("ParsePath(%q) = %q, %q", p, ns, name)
		}
	}
}
