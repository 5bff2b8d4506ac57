// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package issuer

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/internal/vault"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/issuer/pki"
)

// Vaults gives the reconcilers Vault access for an issuer. The production
// implementation logs in once per issuer generation and caches the client;
// unit tests substitute fakes.
type Vaults interface {
	// Check verifies that the issuer's Vault is reachable and unsealed, that
	// the login works and that the token may write to the sign path. It
	// returns nil, a *vault.HealthError, or an error classify understands.
	Check(ctx context.Context, iss v1alpha1.GenericIssuer) error
	// Signer returns a signer for the issuer's sign path.
	Signer(ctx context.Context, iss v1alpha1.GenericIssuer) (pki.Signer, error)
	// Forget drops what is cached for an issuer; only its kind, namespace
	// and name are used, so a deleted issuer can be forgotten by name.
	Forget(iss v1alpha1.GenericIssuer)
}

// vaultConnector is the production Vaults.
type vaultConnector struct {
	// secrets reads Secrets directly from the apiserver: caching every Secret
	// in the cluster to read a few would be both costly and a liability.
	secrets           client.Reader
	tokens            vault.TokenRequester
	clusterResourceNS string
	timeout           time.Duration
	clock             clock.Clock
	log               logr.Logger
	cache             *vault.Cache
}

// resourceNamespace is where an issuer's Secrets and ServiceAccounts live.
func (v *vaultConnector) resourceNamespace(iss v1alpha1.GenericIssuer) string {
	if iss.IssuerKind() == v1alpha1.VaultClusterIssuerKind {
		return v.clusterResourceNS
	}
	return iss.GetNamespace()
}

// Forget implements Vaults.
func (v *vaultConnector) Forget(iss v1alpha1.GenericIssuer) { v.cache.Forget(metricLabel(iss)) }

// client returns the logged-in client for the issuer's current generation.
func (v *vaultConnector) client(ctx context.Context, iss v1alpha1.GenericIssuer) (*vault.Client, error) {
	version := fmt.Sprintf("%s/%d", iss.GetUID(), iss.GetGeneration())
	return v.cache.Get(ctx, metricLabel(iss), version, func(ctx context.Context) (*vault.Client, error) {
		return v.login(ctx, iss, iss.IssuerSpec().Auth)
	})
}

// login logs in to the issuer's Vault (server, namespace, CA bundle from its
// spec) with auth, which is spec.auth or another login the spec names.
func (v *vaultConnector) login(ctx context.Context, iss v1alpha1.GenericIssuer, auth v1alpha1.VaultAuth) (*vault.Client, error) {
	cfg, method, err := v.configFor(ctx, iss, auth)
	if err != nil {
		return nil, err
	}
	return vault.Login(ctx, cfg, method, vault.LoginOptions{Clock: v.clock, Logger: v.log.WithValues("issuer", issuerName(iss))})
}

// vaultConfig is where and how to reach the issuer's Vault.
func (v *vaultConnector) vaultConfig(ctx context.Context, iss v1alpha1.GenericIssuer) (vault.Config, error) {
	spec := iss.IssuerSpec()
	cfg := vault.Config{Server: spec.Server, Namespace: spec.Namespace, CABundle: spec.CABundle, Timeout: v.timeout}
	if ref := spec.CABundleSecretRef; ref != nil {
		ca, err := v.secretValue(ctx, v.resourceNamespace(iss), *ref)
		if err != nil {
			return cfg, err
		}
		cfg.CABundle = ca
	}
	return cfg, nil
}

func (v *vaultConnector) configFor(ctx context.Context, iss v1alpha1.GenericIssuer, a v1alpha1.VaultAuth) (vault.Config, vault.AuthMethod, error) {
	cfg, err := v.vaultConfig(ctx, iss)
	if err != nil {
		return cfg, nil, err
	}
	ns := v.resourceNamespace(iss)
	switch {
	case a.Kubernetes != nil:
		return cfg, &vault.KubernetesAuth{
			MountPath:      a.Kubernetes.MountPath,
			Role:           a.Kubernetes.Role,
			Namespace:      ns,
			ServiceAccount: a.Kubernetes.ServiceAccountRef.Name,
			Audiences:      slices.Clone(a.Kubernetes.ServiceAccountRef.Audiences),
			Tokens:         v.tokens,
		}, nil
	case a.AppRole != nil:
		ref := a.AppRole.SecretRef
		return cfg, &vault.AppRoleAuth{
			MountPath: a.AppRole.Path,
			RoleID:    a.AppRole.RoleID,
			SecretID: func(ctx context.Context) (string, error) {
				b, err := v.secretValue(ctx, ns, ref)
				return string(b), err
			},
		}, nil
	case a.Token != nil:
		ref := a.Token.SecretRef
		return cfg, &vault.TokenAuth{Token: func(ctx context.Context) (string, error) {
			b, err := v.secretValue(ctx, ns, ref)
			return string(b), err
		}}, nil
	}
	return cfg, nil, &IssuerError{Reason: ReasonInvalidConfig, Err: fmt.Errorf("issuer %s: spec.auth names no auth method", issuerName(iss))}
}

// secretValue reads one key of a Secret. A missing Secret or key is an
// IssuerError: the issuer is misconfigured until someone creates it.
func (v *vaultConnector) secretValue(ctx context.Context, ns string, ref v1alpha1.SecretKeySelector) ([]byte, error) {
	var s corev1.Secret
	if err := v.secrets.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, &s); err != nil {
		return nil, &IssuerError{Reason: ReasonInvalidConfig, Err: fmt.Errorf("reading secret %s/%s: %w", ns, ref.Name, err)}
	}
	b, ok := s.Data[ref.Key]
	if !ok || len(b) == 0 {
		return nil, &IssuerError{Reason: ReasonInvalidConfig, Err: fmt.Errorf("secret %s/%s has no key %q", ns, ref.Name, ref.Key)}
	}
	return b, nil
}

// Check implements Vaults.
func (v *vaultConnector) Check(ctx context.Context, iss v1alpha1.GenericIssuer) error {
	path, err := v1alpha1.ParseSignPath(iss.IssuerSpec().Path)
	if err != nil {
		return &IssuerError{Reason: ReasonInvalidConfig, Err: err}
	}
	// Health first, with an unauthenticated client, so a sealed or
	// unreachable Vault is reported as such rather than as a login failure.
	cfg, err := v.vaultConfig(ctx, iss)
	if err != nil {
		return err
	}
	anon, err := vault.NewClient(cfg)
	if err != nil {
		return &IssuerError{Reason: ReasonInvalidConfig, Err: err}
	}
	if _, err := vault.Health(ctx, anon); err != nil {
		return err
	}
	c, err := v.client(ctx, iss)
	if err != nil {
		return err
	}
	caps, err := retryAfterRelogin(ctx, c, func() ([]string, error) {
		return c.API().Sys().CapabilitiesSelfWithContext(ctx, path.String())
	})
	if err != nil {
		return fmt.Errorf("checking capabilities of %s on %s: %w", c.Auth(), path, err)
	}
	if !slices.Contains(caps, "update") && !slices.Contains(caps, "create") && !slices.Contains(caps, "root") {
		return &IssuerError{Reason: ReasonPermissionDenied, Err: fmt.Errorf("%s may not write to %s (capabilities: %v)", c.Auth(), path, caps)}
	}
	return nil
}

// Signer implements Vaults.
func (v *vaultConnector) Signer(ctx context.Context, iss v1alpha1.GenericIssuer) (pki.Signer, error) {
	path, err := v1alpha1.ParseSignPath(iss.IssuerSpec().Path)
	if err != nil {
		return nil, &IssuerError{Reason: ReasonInvalidConfig, Err: err}
	}
	c, err := v.client(ctx, iss)
	if err != nil {
		return nil, err
	}
	return &reloginSigner{client: c, path: path.String()}, nil
}

// reloginSigner signs, logging in again once if Vault refuses the token
// (revoked or expired between renewals).
type reloginSigner struct {
	client *vault.Client
	path   string
}

// Sign implements pki.Signer.
func (s *reloginSigner) Sign(ctx context.Context, r pki.Request) (*pki.Bundle, error) {
	return retryAfterRelogin(ctx, s.client, func() (*pki.Bundle, error) {
		return (&pki.VaultSigner{Logical: s.client.API().Logical(), Path: s.path}).Sign(ctx, r)
	})
}

func retryAfterRelogin[T any](ctx context.Context, c *vault.Client, f func() (T, error)) (T, error) {
	out, err := f()
	if code := vault.StatusCode(err); code != http.StatusForbidden && code != http.StatusUnauthorized {
		return out, err
	}
	if lerr := c.Relogin(ctx); lerr != nil {
		return out, lerr
	}
	return f()
}

// VaultLogin logs in to an issuer's Vault with a login other than its
// signing one (spec.revocation.auth), resolving the ServiceAccounts and
// Secrets that login references as the issuer does: in the issuer's
// namespace, or in the cluster resource namespace for a VaultClusterIssuer.
type VaultLogin struct{ c *vaultConnector }

// NewVaultLogin returns a VaultLogin. secrets should read from the apiserver
// (uncached); clusterResourceNS is Options.ClusterResourceNamespace.
func NewVaultLogin(secrets client.Reader, tokens vault.TokenRequester, clusterResourceNS string, timeout time.Duration, clk clock.Clock, log logr.Logger) *VaultLogin {
	return &VaultLogin{c: &vaultConnector{secrets: secrets, tokens: tokens, clusterResourceNS: clusterResourceNS, timeout: timeout, clock: clk, log: log}}
}

// Login logs in to iss's Vault with auth. The caller owns (and closes) the client.
func (l *VaultLogin) Login(ctx context.Context, iss v1alpha1.GenericIssuer, auth v1alpha1.VaultAuth) (*vault.Client, error) {
	return l.c.login(ctx, iss, auth)
}

// RetryAfterRelogin calls f, and once more after logging c in again when
// Vault refused the token (403/401: expired or revoked between renewals).
func RetryAfterRelogin[T any](ctx context.Context, c *vault.Client, f func() (T, error)) (T, error) {
	return retryAfterRelogin(ctx, c, f)
}

// IssuerName is how the issuer's metrics name an issuer (label issuer):
// "vaultclusterissuer/<name>" or "vaultissuer/<namespace>/<name>".
func IssuerName(iss v1alpha1.GenericIssuer) string { return metricLabel(iss) }
