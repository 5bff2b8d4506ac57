// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// These are CONTRACT TESTS: real AWS cannot be reached from this project's
// machines, so the store runs against internal/cloudfake/awssm, an
// in-process server speaking Secrets Manager's documented JSON 1.1
// protocol, through the official SDK.

package awssm_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyward-io/keyward/custody/awssm"
	"github.com/keyward-io/keyward/custody/storetest"
	fake "github.com/keyward-io/keyward/internal/cloudfake/awssm"
)

const region = "eu-west-1"

// Identities of the fake, mirroring deploy/aws's policies.
const (
	writerKey = "AKIAWRITER"
	guardKey  = "AKIAGUARD"
	agentKey  = "AKIAAGENT"
	rootKey   = "AKIAROOT"
)

func identities() map[string]fake.Permission {
	return map[string]fake.Permission{
		writerKey: {Ops: []string{fake.OpCreateSecret, fake.OpPutSecretValue, fake.OpDescribeSecret,
			fake.OpTagResource, fake.OpUpdateSecretVersionStage, fake.OpDeleteSecret, fake.OpListSecrets}},
		guardKey: {Ops: []string{fake.OpDescribeSecret}},
		agentKey: {Ops: []string{fake.OpGetSecretValue}, NamePrefix: "tls/"},
		rootKey: {Ops: []string{fake.OpCreateSecret, fake.OpPutSecretValue, fake.OpDescribeSecret, fake.OpGetSecretValue,
			fake.OpTagResource, fake.OpUpdateSecretVersionStage, fake.OpDeleteSecret, fake.OpListSecrets}},
	}
}

func startFake(t *testing.T) *fake.Server {
	srv := fake.Start(region, identities())
	t.Cleanup(srv.Close)
	return srv
}

func optsFor(srv *fake.Server, key, prefix string) awssm.Options {
	return awssm.Options{
		Region: region, Endpoint: srv.URL, Prefix: prefix,
		Timeout: 5 * time.Second, MaxBackoff: 20 * time.Millisecond,
		Credentials: credentials.NewStaticCredentialsProvider(key, "secret-of-"+key, ""),
	}
}

func newStore(t *testing.T, o awssm.Options) *awssm.Store {
	t.Helper()
	s, err := awssm.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newReader(t *testing.T, o awssm.Options) *awssm.Reader {
	t.Helper()
	r, err := awssm.NewReader(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rawClient is the plain SDK client of an identity, for what Keyward's
// store never does (a torn write, inspection).
func rawClient(srv *fake.Server, key string) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region: region, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(key, "secret-of-"+key, ""),
	})
}

// tear writes the next version of a record's data, labelled as Put labels
// it, without its tags: a writer that died between its two calls.
func tear(t *testing.T, c *secretsmanager.Client, secret string) {
	t.Helper()
	ctx := context.Background()
	out, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secret)})
	if err != nil {
		t.Fatal(err)
	}
	cur := 0
	for id, stages := range out.VersionIdsToStages {
		for _, s := range stages {
			if s == "AWSCURRENT" {
				fmt.Sscanf(id, "keyward-v%d", &cur)
			}
		}
	}
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(secret), ClientRequestToken: aws.String(awssm.VersionID(cur + 1)),
		SecretBinary: []byte("torn"), VersionStages: []string{"AWSCURRENT", awssm.VersionLabel(cur + 1)},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConformance runs the store conformance suite against the contract
// fake, with the custody writer's, the guard's (DescribeSecret only) and an
// agent's (GetSecretValue only) identities.
func TestConformance(t *testing.T) {
	srv := startFake(t)
	root := rawClient(srv, rootKey)
	var n atomic.Int32
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		prefix := fmt.Sprintf("tls/conformance-%d", n.Add(1))
		store := newStore(t, optsFor(srv, writerKey, prefix))
		return storetest.Subject{
			Store:          store,
			Meta:           newStore(t, optsFor(srv, guardKey, prefix)),
			MetaOnly:       true,
			MetaReader:     newReader(t, optsFor(srv, guardKey, prefix)),
			Reader:         newReader(t, optsFor(srv, agentKey, prefix)),
			MaxRecordBytes: awssm.MaxRecordBytes,
			CAS:            storetest.CASBestEffort,
			Tear: func(t *testing.T, namespace, name string) {
				tear(t, root, store.Path(namespace, name))
			},
		}
	})
}
