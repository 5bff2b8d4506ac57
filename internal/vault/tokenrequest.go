// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NewTokenRequester returns a TokenRequester that calls the TokenRequest API
// (serviceaccounts/token, create) through c.
func NewTokenRequester(c client.Client) TokenRequester { return tokenRequester{c} }

type tokenRequester struct{ c client.Client }

// RequestToken implements TokenRequester.
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
