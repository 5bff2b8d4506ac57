// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/internal/payload"
)

// noCheckAttempts bounds how often a Put with cas -1 tries again after
// another writer took the version it meant to write.
const noCheckAttempts = 3

// Put writes rec as the record's next version (PutSecretValue with the
// version's deterministic token and labels), then its metadata (TagResource),
// then unpins versions beyond MaxVersions. See the package doc for the
// check-and-set and its residual race.
func (s *Store) Put(ctx context.Context, rec custody.Record, cas int) (int, error) {
	if err := validName(rec.Namespace, rec.Name); err != nil {
		return 0, fmt.Errorf("writing custody record: %w", err)
	}
	if n := len(rec.Key) + len(rec.Certificate) + len(rec.CA); n > MaxRecordBytes {
		return 0, fmt.Errorf("writing custody record for secret %s/%s: record is %d bytes, AWS Secrets Manager holds at most %d", rec.Namespace, rec.Name, n, MaxRecordBytes)
	}
	if _, err := toTags(rec, 0); err != nil {
		return 0, fmt.Errorf("writing custody record for secret %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	sn := s.Path(rec.Namespace, rec.Name)
	blob := payload.Encode(payload.Record{Namespace: rec.Namespace, Name: rec.Name, WrittenAt: time.Now(),
		Key: rec.Key, Cert: rec.Certificate, CA: rec.CA})
	var version int
	var st state
	var err error
	for attempt := 1; ; attempt++ {
		version, st, err = s.putData(ctx, sn, rec, blob, cas)
		if cas >= 0 || !errors.Is(err, custody.ErrConflict) || attempt == noCheckAttempts {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("writing custody record for secret %s/%s (%s): %w", rec.Namespace, rec.Name, sn, err)
	}
	tags, _ := toTags(rec, version)
	if _, err := s.client.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(sn), Tags: tags}); err != nil {
		return 0, fmt.Errorf("writing custody metadata for secret %s/%s (%s, data version %d): %w", rec.Namespace, rec.Name, sn, version, callError("TagResource", err))
	}
	s.unpin(ctx, sn, st, version)
	return version, nil
}

// putData checks cas against the current version and writes the next one.
// It returns the version written and the state it was checked against.
func (s *Store) putData(ctx context.Context, sn string, rec custody.Record, blob []byte, cas int) (int, state, error) {
	st, err := describe(ctx, s.client, sn)
	if err != nil {
		return 0, st, err
	}
	if cas >= 0 && cas != st.current {
		return 0, st, fmt.Errorf("check-and-set version %d, current version %d: %w", cas, st.current, custody.ErrConflict)
	}
	if !st.exists {
		if err := s.create(ctx, sn, rec); err != nil {
			return 0, st, err
		}
	}
	// With a check, the version written is cas+1 (current+1, as just
	// checked): if another writer wrote it since, its token collides. The
	// Describe check above only fails faster.
	next := st.current + 1
	if cas >= 0 {
		next = cas + 1
	}
	_, err = s.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(sn),
		ClientRequestToken: aws.String(VersionID(next)),
		SecretBinary:       blob,
		VersionStages:      []string{"AWSCURRENT", VersionLabel(next)},
	})
	if isCode(err, codeExists) {
		return 0, st, fmt.Errorf("version %d was written concurrently: %w", next, custody.ErrConflict)
	}
	if err != nil {
		return 0, st, callError("PutSecretValue", err)
	}
	return next, st, nil
}

// create makes the record's secret without a value, tagged with the record's
// name only: until its first version it has no current version, which
// Metadata reports as not found. Another writer creating it at the same time
// is not an error: the versions' tokens decide between the two.
func (s *Store) create(ctx context.Context, sn string, rec custody.Record) error {
	_, err := s.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:        aws.String(sn),
		Description: aws.String(fmt.Sprintf("Keyward custody record of Secret %s/%s", rec.Namespace, rec.Name)),
		Tags:        identityTags(rec.Namespace, rec.Name),
	})
	if err != nil && !isCode(err, codeExists) {
		return callError("CreateSecret", err)
	}
	return nil
}

// unpin removes the "v<K>" label of versions K <= newest-MaxVersions, so
// Secrets Manager may drop them and Read no longer finds them. Failures are
// left for the next write (which sees every labelled version again): the
// record is written and correct, only an old version stays readable.
func (s *Store) unpin(ctx context.Context, sn string, st state, newest int) {
	for id, n := range st.labelled {
		if n > newest-s.opts.MaxVersions {
			continue
		}
		_, _ = s.client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(sn), VersionStage: aws.String(VersionLabel(n)), RemoveFromVersionId: aws.String(id),
		})
	}
}

// Delete removes the record's secret and every version at once
// (ForceDeleteWithoutRecovery; the package doc says why). A record that does
// not exist is not an error.
func (s *Store) Delete(ctx context.Context, namespace, name string) error {
	if err := validName(namespace, name); err != nil {
		return fmt.Errorf("deleting custody record: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	sn := s.Path(namespace, name)
	_, err := s.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String(sn), ForceDeleteWithoutRecovery: aws.Bool(true),
	})
	if err != nil && !isCode(err, codeNotFound) {
		return fmt.Errorf("deleting custody record for secret %s/%s (%s): %w", namespace, name, sn, callError("DeleteSecret", err))
	}
	return nil
}
