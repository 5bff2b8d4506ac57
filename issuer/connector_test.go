// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

type noTokens struct{}

func (noTokens) RequestToken(context.Context, string, string, []string, time.Duration) (string, error) {
	return "", errors.New("not used")
}

// TestConfigFor checks how an issuer's spec becomes a Vault config and auth
// method: which namespace Secrets and ServiceAccounts are read from, and what
// a missing Secret does.
func TestConfigFor(t *testing.T) {
	t.Parallel()
	secret := func(ns, name string, data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(
		secret("keyward-system", "approle", map[string]string{"secretId": "cluster-secret-id"}),
		secret("team", "approle", map[string]string{"secretId": "team-secret-id"}),
		secret("team", "ca", map[string]string{"ca.crt": "PEM"}),
		secret("team", "token", map[string]string{"token": "  s.tok\n"}),
	).Build()
	v := &vaultConnector{secrets: c, tokens: noTokens{}, clusterResourceNS: "keyward-system", timeout: 7 * time.Second, cache: &vault.Cache{}}

	spec := func(auth v1alpha1.VaultAuth) v1alpha1.VaultIssuerSpec {
		return v1alpha1.VaultIssuerSpec{Server: "https://vault:8200", Path: "pki/sign/r", Namespace: "ns1", Auth: auth}
	}
	appRole := v1alpha1.VaultAuth{AppRole: &v1alpha1.AppRoleAuth{Path: "approle", RoleID: "rid", SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secretId"}}}
	ctx := context.Background()

	t.Run("cluster issuer reads from the cluster resource namespace", func(t *testing.T) {
		t.Parallel()
		iss := &v1alpha1.VaultClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "v"}, Spec: spec(appRole)}
		cfg, auth, err := v.configFor(ctx, iss, iss.IssuerSpec().Auth)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Server != "https://vault:8200" || cfg.Namespace != "ns1" || cfg.Timeout != 7*time.Second {
			t.Errorf("config = %+v", cfg)
		}
		ar, ok := auth.(*vault.AppRoleAuth)
		if !ok {
			t.Fatalf("auth = %T, want AppRole", auth)
		}
		if id, err := ar.SecretID(ctx); err != nil || id != "cluster-secret-id" {
			t.Errorf("secret ID = %q, %v; want the one in keyward-system", id, err)
		}
	})

	t.Run("namespaced issuer reads from its namespace, CA from a Secret", func(t *testing.T) {
		t.Parallel()
		s := spec(appRole)
		s.CABundleSecretRef = &v1alpha1.SecretKeySelector{Name: "ca", Key: "ca.crt"}
		iss := &v1alpha1.VaultIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "v"}, Spec: s}
		cfg, auth, err := v.configFor(ctx, iss, iss.IssuerSpec().Auth)
		if err != nil {
			t.Fatal(err)
		}
		if string(cfg.CABundle) != "PEM" {
			t.Errorf("CA bundle = %q, want the Secret's", cfg.CABundle)
		}
		if id, _ := auth.(*vault.AppRoleAuth).SecretID(ctx); id != "team-secret-id" {
			t.Errorf("secret ID = %q, want team's", id)
		}
	})

	t.Run("kubernetes auth uses the issuer's service account", func(t *testing.T) {
		t.Parallel()
		iss := &v1alpha1.VaultIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "v"}, Spec: spec(v1alpha1.VaultAuth{Kubernetes: &v1alpha1.KubernetesAuth{
			Role: "r", MountPath: "/v1/auth/k8s", ServiceAccountRef: v1alpha1.ServiceAccountRef{Name: "issuer", Audiences: []string{"vault"}},
		}})}
		_, auth, err := v.configFor(ctx, iss, iss.IssuerSpec().Auth)
		if err != nil {
			t.Fatal(err)
		}
		ka, ok := auth.(*vault.KubernetesAuth)
		if !ok || ka.Namespace != "team" || ka.ServiceAccount != "issuer" || ka.Role != "r" || ka.MountPath != "/v1/auth/k8s" || ka.Tokens == nil {
			t.Errorf("auth = %+v", auth)
		}
	})

	t.Run("token auth reads the Secret at login", func(t *testing.T) {
		t.Parallel()
		iss := &v1alpha1.VaultIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "v"}, Spec: spec(v1alpha1.VaultAuth{Token: &v1alpha1.TokenAuth{SecretRef: v1alpha1.SecretKeySelector{Name: "token", Key: "token"}}})}
		_, auth, err := v.configFor(ctx, iss, iss.IssuerSpec().Auth)
		if err != nil {
			t.Fatal(err)
		}
		if tok, err := auth.(*vault.TokenAuth).Token(ctx); err != nil || tok != "  s.tok\n" {
			t.Errorf("token = %q, %v", tok, err)
		}
	})

	t.Run("missing Secret or key is an InvalidConfig issuer error", func(t *testing.T) {
		t.Parallel()
		for _, ref := range []v1alpha1.SecretKeySelector{{Name: "nope", Key: "ca.crt"}, {Name: "ca", Key: "nope"}} {
			s := spec(appRole)
			s.CABundleSecretRef = &ref
			iss := &v1alpha1.VaultIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "v"}, Spec: s}
			_, _, err := v.configFor(ctx, iss, iss.IssuerSpec().Auth)
			var ie *IssuerError
			if !errors.As(err, &ie) || ie.Reason != ReasonInvalidConfig {
				t.Errorf("ref %+v: err = %v, want IssuerError/%s", ref, err, ReasonInvalidConfig)
			}
		}
	})

	t.Run("no auth method", func(t *testing.T) {
		t.Parallel()
		iss := &v1alpha1.VaultIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "v"}, Spec: spec(v1alpha1.VaultAuth{})}
		var ie *IssuerError
		if _, _, err := v.configFor(ctx, iss, iss.IssuerSpec().Auth); !errors.As(err, &ie) || ie.Reason != ReasonInvalidConfig {
			t.Errorf("err = %v, want IssuerError/%s", err, ReasonInvalidConfig)
		}
	})

	t.Run("invalid path is reported by Check before Vault is called", func(t *testing.T) {
		t.Parallel()
		s := spec(appRole)
		s.Path = "pki/issue/r"
		iss := &v1alpha1.VaultIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "v"}, Spec: s}
		var ie *IssuerError
		if err := v.Check(ctx, iss); !errors.As(err, &ie) || ie.Reason != ReasonInvalidConfig {
			t.Errorf("Check() = %v, want IssuerError/%s", err, ReasonInvalidConfig)
		}
	})
}
