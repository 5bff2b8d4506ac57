// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"time"

	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/internal/payload"
)

// errBusy is a live lease of another writer.
var errBusy = errors.New("another writer holds the record's lease")

// LeaseTTL is how long a writer's lease (keyward-pending) holds against
// other writers: past it the lease is taken as abandoned. Each write is
// bounded by Options.Timeout; the rest absorbs clock skew between writers.
func (s *Store) LeaseTTL() time.Duration { return s.opts.Timeout + 30*time.Second }

// Put writes rec as a new version with check-and-set (see the package doc:
// lease, add version, metadata). cas -1 retries a lost lease race a few
// times before giving up with custody.ErrConflict.
func (s *Store) Put(ctx context.Context, rec custody.Record, cas int) (int, error) {
	if err := validName(rec.Namespace, rec.Name); err != nil {
		return 0, fmt.Errorf("writing custody record: %w", err)
	}
	if n := len(rec.Key) + len(rec.Certificate) + len(rec.CA); n > MaxRecordBytes {
		return 0, fmt.Errorf("writing custody record for secret %s/%s: record is %d bytes, GCP Secret Manager holds at most %d", rec.Namespace, rec.Name, n, MaxRecordBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	full := s.secretName(rec.Namespace, rec.Name)
	for attempt := 1; ; attempt++ {
		v, err := s.put(ctx, full, rec, cas)
		if errors.Is(err, errBusy) {
			err = fmt.Errorf("%w: %w", err, custody.ErrConflict)
		}
		// Without a cas there is nothing to be stale against: a lost
		// lease race is retried, a few times, within the timeout.
		if cas < 0 && errors.Is(err, custody.ErrConflict) && attempt < maxUncheckedTries && backoff(ctx, attempt) == nil {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("writing custody record for secret %s/%s: %w", rec.Namespace, rec.Name, err)
		}
		s.prune(ctx, full, v)
		return v, nil
	}
}

// maxUncheckedTries bounds the tries of a Put without check-and-set.
const maxUncheckedTries = 8

// backoff sleeps before try attempt+1: jittered, doubling from 25 ms to 1 s.
func backoff(ctx context.Context, attempt int) error {
	d := min(25*time.Millisecond<<attempt, time.Second)
	d = d/2 + rand.N(d/2)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (s *Store) put(ctx context.Context, full string, rec custody.Record, cas int) (int, error) {
	cur, err := s.readCurrent(ctx, full)
	if err != nil {
		return 0, err
	}
	if err := checkCAS(cur, cas); err != nil {
		return 0, err
	}
	etag, prior, err := s.takeLease(ctx, full, rec, cur)
	if err != nil {
		return 0, err
	}
	data := payload.Encode(payload.Record{
		Namespace: rec.Namespace, Name: rec.Name, WrittenAt: s.opts.Clock.Now(),
		Key: rec.Key, Cert: rec.Certificate, CA: rec.CA,
	})
	ver, err := s.client.AddSecretVersion(ctx, &smpb.AddSecretVersionRequest{
		Parent: full, Payload: &smpb.SecretPayload{Data: data},
	}, writeRetry())
	if err != nil {
		s.releaseLease(ctx, full, etag, prior)
		return 0, callError("adding a version to", full, err)
	}
	v, err := versionNumber(ver.GetName())
	if err != nil {
		return 0, err
	}
	_, err = s.client.UpdateSecret(ctx, &smpb.UpdateSecretRequest{
		Secret: &smpb.Secret{
			Name: full, Etag: etag, Labels: labels(rec.Namespace),
			Annotations: toAnnotations(rec.Namespace, rec.Name, rec.Meta, v),
		},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels", "annotations"}},
	}, writeRetry())
	if isEtagMismatch(err) {
		return 0, fmt.Errorf("version %d of %s was written but another writer took the lease before its metadata: %w", v, full, custody.ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("version %d of %s was written but not its metadata (the record is torn until the next write): %w", v, full, callError("updating", full, err))
	}
	return v, nil
}

func checkCAS(cur current, cas int) error {
	switch {
	case cas < 0:
		return nil
	case cas == 0 && cur.live:
		return fmt.Errorf("record exists at version %d, expected none: %w", cur.version, custody.ErrConflict)
	case cas > 0 && (!cur.live || cur.version != cas):
		return fmt.Errorf("record is at version %d (live %t), expected %d: %w", cur.version, cur.live, cas, custody.ErrConflict)
	}
	return nil
}

func labels(namespace string) map[string]string {
	return map[string]string{labelManaged: "true", labelNamespace: namespace}
}

// takeLease creates the secret, or marks it with this writer's lease under
// its etag. It returns the etag to write the final metadata with and the
// annotations to restore if no version gets written.
func (s *Store) takeLease(ctx context.Context, full string, rec custody.Record, cur current) (string, map[string]string, error) {
	now := s.opts.Clock.Now()
	if cur.secret == nil {
		created, err := s.client.CreateSecret(ctx, &smpb.CreateSecretRequest{
			Parent:   "projects/" + s.opts.Project,
			SecretId: full[len("projects/"+s.opts.Project+"/secrets/"):],
			Secret: &smpb.Secret{
				Replication: s.replication(),
				Labels:      labels(rec.Namespace),
				Annotations: map[string]string{annRecord: rec.Namespace + "/" + rec.Name, annPending: now.UTC().Format(time.RFC3339Nano)},
			},
		}, writeRetry())
		if isAlreadyExists(err) {
			return "", nil, fmt.Errorf("%s was created concurrently: %w", full, custody.ErrConflict)
		}
		if err != nil {
			return "", nil, callError("creating", full, err)
		}
		return created.GetEtag(), map[string]string{annRecord: rec.Namespace + "/" + rec.Name}, nil
	}
	prior := cur.secret.GetAnnotations()
	ann := maps.Clone(prior)
	if ann == nil {
		ann = map[string]string{}
	}
	if r := ann[annRecord]; r != "" && r != rec.Namespace+"/"+rec.Name {
		return "", nil, fmt.Errorf("%s holds record %q, not %s/%s", full, r, rec.Namespace, rec.Name)
	}
	if t, err := time.Parse(time.RFC3339Nano, ann[annPending]); err == nil && now.Sub(t) < s.LeaseTTL() {
		return "", nil, fmt.Errorf("%s: %w (since %s)", full, errBusy, t.Format(time.RFC3339))
	}
	ann[annPending] = now.UTC().Format(time.RFC3339Nano)
	ann[annRecord] = rec.Namespace + "/" + rec.Name
	updated, err := s.client.UpdateSecret(ctx, &smpb.UpdateSecretRequest{
		Secret:     &smpb.Secret{Name: full, Etag: cur.secret.GetEtag(), Annotations: ann},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"annotations"}},
	}, writeRetry())
	if isEtagMismatch(err) {
		return "", nil, fmt.Errorf("%s changed since it was read: %w", full, custody.ErrConflict)
	}
	if err != nil {
		return "", nil, callError("taking the write lease on", full, err)
	}
	return updated.GetEtag(), prior, nil
}

// releaseLease restores the annotations a lease replaced, when the write
// failed before adding a version, so that the next writer need not wait for
// the lease to expire. Best effort, with its own short deadline: the
// write's own may be what ran out.
func (s *Store) releaseLease(ctx context.Context, full, etag string, prior map[string]string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_, _ = s.client.UpdateSecret(ctx, &smpb.UpdateSecretRequest{
		Secret:     &smpb.Secret{Name: full, Etag: etag, Annotations: prior},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"annotations"}},
	}, writeRetry())
}

func (s *Store) replication() *smpb.Replication {
	if len(s.opts.Locations) == 0 {
		return &smpb.Replication{Replication: &smpb.Replication_Automatic_{Automatic: &smpb.Replication_Automatic{}}}
	}
	um := &smpb.Replication_UserManaged{}
	for _, l := range s.opts.Locations {
		um.Replicas = append(um.Replicas, &smpb.Replication_UserManaged_Replica{Location: l})
	}
	return &smpb.Replication{Replication: &smpb.Replication_UserManaged_{UserManaged: um}}
}

// prune destroys enabled versions older than the newest MaxVersions. It
// runs after a successful write and does not fail it: a version it misses
// is destroyed after the next write.
func (s *Store) prune(ctx context.Context, full string, newest int) {
	if newest <= s.opts.MaxVersions {
		return
	}
	it := s.client.ListSecretVersions(ctx, &smpb.ListSecretVersionsRequest{Parent: full, Filter: "state:ENABLED"}, readRetry())
	for {
		v, err := it.Next()
		if err != nil {
			return
		}
		n, err := versionNumber(v.GetName())
		if err != nil || n > newest-s.opts.MaxVersions {
			continue
		}
		_, _ = s.client.DestroySecretVersion(ctx, &smpb.DestroySecretVersionRequest{Name: v.GetName(), Etag: v.GetEtag()}, writeRetry())
	}
}
