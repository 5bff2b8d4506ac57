// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package tokenrequest obtains ServiceAccount tokens for Vault's Kubernetes
// auth through the TokenRequest API. It is apart from package vault so that
// Vault clients (the delivery library's among them) need no Kubernetes client.
package tokenrequest

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/internal/vault"
)

// New returns a vault.TokenRequester that calls the TokenRequest API
// (serviceaccounts/token, create) through c.
func New(c client.Client) vault.TokenRequester { return tokenRequester{c} }

type tokenRequester struct{ c client.Client }

// RequestToken implements vault.TokenRequester.
func (t tokenRequester) RequestToken(ctx context.Context, namespace, serviceAccount string, audiences []string, expiration time.Duration) (string, error) {
	secs := int64(expiration / time.Second)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: serviceAccount}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         audiences,
		ExpirationSeconds: &secs,
	}}
	if err := t.c.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", fmt.Errorf("creating token for service account %s/%s: %w", namespace, serviceAccount, err)
	}
	if tr.Status.Token == "" {
		return "", fmt.Errorf("creating token for service account %s/%s: empty token in response", namespace, serviceAccount)
	}
	return tr.Status.Token, nil
}
