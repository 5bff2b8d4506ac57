// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"context"
	"fmt"

	"github.com/keyward-io/keyward/custody"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StrictMode says whether a namespace is in strict mode (certificates moved
// to custody too).
type StrictMode interface {
	// Strict reports the namespace's mode. It must not block on the network:
	// it is called on the admission path.
	Strict(ctx context.Context, namespace string) (bool, error)
}

// NamespaceStrictMode reads the custody.NamespaceLabelRedactCertificates label
// ("true"/"false") from Namespaces through Reader, falling back to Default.
// Reader must be informer-backed (a manager's cached client), so a lookup is a
// cache read, not an API call.
type NamespaceStrictMode struct {
	// Reader reads Namespaces, from a cache.
	Reader client.Reader
	// Default applies when the label is absent or not "true"/"false".
	Default bool
}

// Strict implements StrictMode. A namespace missing from the cache gets Default.
func (m NamespaceStrictMode) Strict(ctx context.Context, namespace string) (bool, error) {
	if m.Reader == nil {
		return m.Default, nil
	}
	var ns corev1.Namespace
	if err := m.Reader.Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return m.Default, nil
		}
		return false, fmt.Errorf("reading strict mode of namespace %s: %w", namespace, err)
	}
	switch ns.Labels[custody.NamespaceLabelRedactCertificates] {
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return m.Default, nil
	}
}

// FixedStrictMode is a StrictMode with the same answer for every namespace.
type FixedStrictMode bool

// Strict implements StrictMode.
func (f FixedStrictMode) Strict(context.Context, string) (bool, error) { return bool(f), nil }
