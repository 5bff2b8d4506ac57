// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package adopt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
)

// Migration moves a cluster's custody records from one store to another
// (Vault KV v2 to a cloud secret manager, say) without re-keying: each
// placeholder's current record is copied as it is, key and certificate
// included, and the placeholder is pointed at the copy. Run it while
// Keyward is stopped (a maintenance window: Secret writes in custody
// namespaces are refused meanwhile, and cert-manager retries them), then
// start Keyward and the agents on the new store.
type Migration struct {
	// From reads the current records with their keys (an operator's
	// credentials: Keyward's own roles cannot read keys back).
	From Source
	// To is the new store, with the custody writer's permissions.
	To custody.Store
	// Secrets lists and updates the placeholders.
	Secrets client.Client
	// DryRun checks and reports; it writes nothing.
	DryRun bool
}

// Moved is what Migrate did with one placeholder.
type Moved struct {
	Namespace, Name string
	// From and To are the record's path and version before and after.
	From, To string
	// Skipped says why the placeholder was left alone (it is then still
	// served from the old store); empty when it moved.
	Skipped string
}

// Migrate moves the records of every placeholder Secret in namespaces.
// A placeholder whose record does not match it (another version current,
// another key) is skipped with the reason, never moved half-way: its
// Certificate is re-issued into the new store once Keyward runs on it.
// The error is the first that stopped the migration (a store or API
// failure); what moved before it stays moved and is reported.
func (m *Migration) Migrate(ctx context.Context, namespaces []string) ([]Moved, error) {
	var out []Moved
	for _, ns := range namespaces {
		var list corev1.SecretList
		if err := m.Secrets.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{custody.LabelCustody: custody.LabelCustodyVault}); err != nil {
			return out, fmt.Errorf("listing placeholders in namespace %s: %w", ns, err)
		}
		for i := range list.Items {
			mv, err := m.moveOne(ctx, &list.Items[i])
			out = append(out, mv)
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

func (m *Migration) moveOne(ctx context.Context, s *corev1.Secret) (Moved, error) {
	mv := Moved{Namespace: s.Namespace, Name: s.Name}
	p, ok := custody.ParsePlaceholder(s)
	if !ok {
		mv.Skipped = "not a placeholder (its custody annotations are incomplete)"
		return mv, nil
	}
	mv.From = p.Path + "@" + strconv.Itoa(p.Version)
	if p.Path == m.To.Path(s.Namespace, s.Name) {
		mv.Skipped = "already in the new store"
		return mv, nil
	}
	meta, err := m.From.Metadata(ctx, s.Namespace, s.Name)
	switch {
	case errors.Is(err, custody.ErrNotFound):
		mv.Skipped = "no record in the old store"
		return mv, nil
	case err != nil:
		return mv, fmt.Errorf("migrating %s/%s: %w", s.Namespace, s.Name, err)
	case meta.Torn || meta.Version != p.Version || !strings.EqualFold(meta.KeySHA256, p.KeySHA256):
		mv.Skipped = fmt.Sprintf("the old store's current record (version %d) is not the one the placeholder names (version %d)", meta.Version, p.Version)
		return mv, nil
	}
	rec, err := m.From.Read(ctx, s.Namespace, s.Name, p.Version)
	if err != nil {
		return mv, fmt.Errorf("migrating %s/%s: %w", s.Namespace, s.Name, err)
	}
	rec.Meta = meta
	if _, err := recordLeaf(rec); err != nil {
		mv.Skipped = err.Error()
		return mv, nil
	}
	if _, err := tls.X509KeyPair(rec.Certificate, rec.Key); err != nil {
		mv.Skipped = "the old store's key does not match its certificate"
		return mv, nil
	}
	if m.DryRun {
		mv.To = m.To.Path(s.Namespace, s.Name) + "@?"
		return mv, nil
	}
	v, err := m.put(ctx, rec)
	if err != nil {
		return mv, fmt.Errorf("migrating %s/%s: %w", s.Namespace, s.Name, err)
	}
	patch := client.MergeFrom(s.DeepCopy())
	s.Annotations[custody.AnnotationPath] = m.To.Path(s.Namespace, s.Name)
	s.Annotations[custody.AnnotationVersion] = strconv.Itoa(v)
	if err := m.Secrets.Patch(ctx, s, patch, client.FieldOwner(FieldOwner)); err != nil {
		return mv, fmt.Errorf("migrating %s/%s: record copied to version %d, pointing the placeholder at it: %w", s.Namespace, s.Name, v, err)
	}
	mv.To = m.To.Path(s.Namespace, s.Name) + "@" + strconv.Itoa(v)
	return mv, nil
}

// put writes rec as a new record; a record already there with the same key
// and serial (a migration run again after an interruption) is reused.
func (m *Migration) put(ctx context.Context, rec custody.Record) (int, error) {
	v, err := m.To.Put(ctx, rec, 0)
	if !errors.Is(err, custody.ErrConflict) {
		return v, err
	}
	cur, merr := m.To.Metadata(ctx, rec.Namespace, rec.Name)
	if merr == nil && !cur.Torn && strings.EqualFold(cur.KeySHA256, rec.Meta.KeySHA256) && strings.EqualFold(cur.Serial, rec.Meta.Serial) {
		return cur.Version, nil
	}
	return 0, fmt.Errorf("the new store already holds another record for it: %w", err)
}
