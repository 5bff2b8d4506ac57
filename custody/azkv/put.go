// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/internal/payload"
)

// errDeleted is a SetSecret refused because the name is soft-deleted.
var errDeleted = errors.New("secret is soft-deleted")

// errLost is a write that found a rival version after the fact and
// withdrew its own. If every racer withdrew, the record is still at the
// caller's cas and the write is tried again.
var errLost = errors.New("lost a write race")

// Put writes rec as a new version tagged with the next record version and
// checks afterwards that no other writer raced it (see the package doc).
func (s *Store) Put(ctx context.Context, rec custody.Record, cas int) (int, error) {
	if err := validName(rec.Namespace, rec.Name); err != nil {
		return 0, fmt.Errorf("writing custody record: %w", err)
	}
	if n := len(rec.Key) + len(rec.Certificate) + len(rec.CA); n > MaxRecordBytes {
		return 0, fmt.Errorf("writing custody record for secret %s/%s: record is %d bytes, Azure Key Vault holds at most %d", rec.Namespace, rec.Name, n, MaxRecordBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	sn := secretName(s.pe, rec.Namespace, rec.Name)
	for attempt := 0; ; attempt++ {
		v, err := s.put(ctx, sn, rec, cas)
		if errors.Is(err, errDeleted) {
			if attempt == 0 {
				if rerr := s.revive(ctx, sn); rerr != nil {
					err = rerr
				}
			}
			if !errors.Is(err, errDeleted) || sleep(ctx, time.Duration(attempt+1)*250*time.Millisecond) != nil {
				return 0, fmt.Errorf("writing custody record for secret %s/%s: %w", rec.Namespace, rec.Name, err)
			}
			continue
		}
		// A lost race is tried again, a few times, within the timeout:
		// the check-and-set then tells whether a rival won (ErrConflict)
		// or every racer withdrew. Without a cas there is nothing to be
		// stale against. The pause outlasts a rival's withdrawal.
		if (cas < 0 || errors.Is(err, errLost)) && errors.Is(err, custody.ErrConflict) &&
			attempt < maxUncheckedTries && backoff(ctx, attempt+2) == nil {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("writing custody record for secret %s/%s: %w", rec.Namespace, rec.Name, err)
		}
		return v, nil
	}
}

// maxUncheckedTries bounds the tries of a Put without check-and-set.
const maxUncheckedTries = 8

// backoff sleeps before try attempt+1: jittered, doubling from 25 ms to 1 s.
func backoff(ctx context.Context, attempt int) error {
	d := min(25*time.Millisecond<<attempt, time.Second)
	return sleep(ctx, d/2+rand.N(d/2))
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (s *Store) put(ctx context.Context, sn string, rec custody.Record, cas int) (int, error) {
	st, err := listVersions(ctx, s.client, sn)
	if err != nil {
		return 0, err
	}
	switch {
	case cas == 0 && st.live():
		return 0, fmt.Errorf("record exists at version %d, expected none: %w", st.max, custody.ErrConflict)
	case cas > 0 && (!st.live() || st.max != cas):
		return 0, fmt.Errorf("record is at version %d (live %t), expected %d: %w", st.max, st.live(), cas, custody.ErrConflict)
	}
	next := st.max + 1
	value := base64.StdEncoding.EncodeToString(payload.Encode(payload.Record{
		Namespace: rec.Namespace, Name: rec.Name, WrittenAt: s.opts.Clock.Now(),
		Key: rec.Key, Cert: rec.Certificate, CA: rec.CA,
	}))
	resp, err := s.client.SetSecret(ctx, sn, azsecrets.SetSecretParameters{
		Value: &value, ContentType: to.Ptr(ContentType), Tags: toTags(rec, next),
	}, nil)
	if isStatus(err, 409) {
		return 0, fmt.Errorf("%s: %w", sn, errDeleted)
	}
	if err != nil {
		return 0, callError("setting", sn, err)
	}
	mine := ""
	if resp.ID != nil {
		mine = resp.ID.Version()
	}
	after, err := listVersions(ctx, s.client, sn)
	if err != nil {
		return 0, fmt.Errorf("version %d was written but could not be checked against concurrent writers: %w", next, err)
	}
	for _, it := range after.items {
		if it.id != mine && it.n >= next {
			return 0, s.lose(ctx, sn, mine, rec, next, it.n)
		}
	}
	s.prune(ctx, sn, after, next)
	return next, nil
}

// lose disables this writer's version after a lost race and moves its tag
// aside, so that it is never current.
func (s *Store) lose(ctx context.Context, sn, mine string, rec custody.Record, next, other int) error {
	tags := toTags(rec, next)
	delete(tags, tagVersion)
	tags[tagSuperseded] = to.Ptr(strconv.Itoa(next))
	_, err := s.client.UpdateSecretProperties(ctx, sn, mine, azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}, Tags: tags,
	}, nil)
	if err != nil {
		return fmt.Errorf("%w for version %d to another writer's version %d, and could not disable this one (%w): %w", errLost, next, other, callError("disabling", sn, err), custody.ErrConflict)
	}
	return fmt.Errorf("%w for version %d to another writer's version %d: %w", errLost, next, other, custody.ErrConflict)
}

// prune disables enabled versions older than the newest MaxVersions; a
// failure is retried after the next write.
func (s *Store) prune(ctx context.Context, sn string, st versions, newest int) {
	for _, it := range st.items {
		if !it.enabled || it.n > newest-s.opts.MaxVersions {
			continue
		}
		_, _ = s.client.UpdateSecretProperties(ctx, sn, it.id, azsecrets.UpdateSecretPropertiesParameters{
			SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)},
		}, nil)
	}
}

// revive frees a soft-deleted record's name: purged, or recovered when the
// vault's purge protection (or KeepDeleted) forbids that. A recovered
// secret's versions were disabled by Delete, so it counts as absent.
func (s *Store) revive(ctx context.Context, sn string) error {
	if !s.opts.KeepDeleted {
		_, err := s.client.PurgeDeletedSecret(ctx, sn, nil)
		if err == nil {
			return fmt.Errorf("%s: purged: %w", sn, errDeleted) // the name frees up shortly
		}
		if !isStatus(err, 403) {
			return callError("purging deleted", sn, err)
		}
	}
	if _, err := s.client.RecoverDeletedSecret(ctx, sn, nil); err != nil && !isStatus(err, 409) {
		return callError("recovering deleted", sn, err)
	}
	return fmt.Errorf("%s: recovering: %w", sn, errDeleted)
}

// Delete disables every version, deletes the secret and purges it (unless
// KeepDeleted; a vault with purge protection refuses, and the record stays
// soft-deleted and unreadable). A record that does not exist is not an error.
func (s *Store) Delete(ctx context.Context, namespace, name string) error {
	if err := validName(namespace, name); err != nil {
		return fmt.Errorf("deleting custody record: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	sn := secretName(s.pe, namespace, name)
	if err := s.delete(ctx, sn); err != nil {
		return fmt.Errorf("deleting custody record for secret %s/%s: %w", namespace, name, err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, sn string) error {
	st, err := listVersions(ctx, s.client, sn)
	if err != nil || !st.exists {
		return err
	}
	for _, it := range st.items {
		if it.enabled {
			if _, err := s.client.UpdateSecretProperties(ctx, sn, it.id, azsecrets.UpdateSecretPropertiesParameters{
				SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)},
			}, nil); err != nil {
				return callError("disabling a version of", sn, err)
			}
		}
	}
	if _, err := s.client.DeleteSecret(ctx, sn, nil); err != nil && !isStatus(err, 404) {
		return callError("deleting", sn, err)
	}
	if s.opts.KeepDeleted {
		return nil
	}
	// Deletion completes asynchronously: the purge may find nothing to
	// purge (404) or a deletion in progress (409) for a few seconds.
	for i := 1; ; i++ {
		_, err := s.client.PurgeDeletedSecret(ctx, sn, nil)
		switch {
		case err == nil, isStatus(err, 403):
			return nil // purged, or purge protection: soft-deleted with every version disabled
		case (isStatus(err, 404) || isStatus(err, 409)) && sleep(ctx, time.Duration(i)*250*time.Millisecond) == nil:
			continue
		}
		return callError("purging", sn, err)
	}
}
