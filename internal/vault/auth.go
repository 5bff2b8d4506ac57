// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// AuthMethod logs a client in to Vault.
type AuthMethod interface {
	// Login authenticates with c, an unauthenticated client dedicated to
	// this login, and returns the auth secret holding the new token. Errors are wrapped so
	// that StatusCode and ErrorMessages still work on them.
	Login(ctx context.Context, c *vaultapi.Client) (*vaultapi.Secret, error)
	// String names the method and role for messages, e.g.
	// `kubernetes auth (mount "kubernetes", role "keyward-issuer")`. It never
	// contains credentials.
	String() string
}

// TokenRequester obtains short-lived ServiceAccount tokens through the
// Kubernetes TokenRequest API. tokenrequest.New adapts a controller-runtime
// client; tests use a fake.
type TokenRequester interface {
	// RequestToken returns a token for namespace/serviceAccount valid for the
	// given audiences for about expiration.
	RequestToken(ctx context.Context, namespace, serviceAccount string, audiences []string, expiration time.Duration) (string, error)
}

// KubernetesAuth logs in with Vault's Kubernetes auth method, presenting a
// fresh TokenRequest token for a ServiceAccount on every login. No token is
// ever read from or written to a Secret.
type KubernetesAuth struct {
	// MountPath is the auth mount, as a mount name ("kubernetes") or a URL
	// path ("/v1/auth/kubernetes"); empty means "kubernetes".
	MountPath string
	// Role is the Vault role to log in as.
	Role string
	// Namespace and ServiceAccount name the account whose token is presented.
	Namespace, ServiceAccount string
	// Audiences the token is requested for; empty means ["vault"].
	Audiences []string
	// Tokens requests the ServiceAccount token.
	Tokens TokenRequester
}

// kubernetesTokenLifetime is how long requested ServiceAccount tokens live:
// the minimum the TokenRequest API accepts, since Vault only needs it once.
const kubernetesTokenLifetime = 10 * time.Minute

// Login implements AuthMethod.
func (a *KubernetesAuth) Login(ctx context.Context, c *vaultapi.Client) (*vaultapi.Secret, error) {
	if a.Tokens == nil || a.Role == "" || a.ServiceAccount == "" {
		return nil, fmt.Errorf("%s: role, service account and token requester are required", a)
	}
	jwt, err := a.Tokens.RequestToken(ctx, a.Namespace, a.ServiceAccount, a.audiences(), kubernetesTokenLifetime)
	if err != nil {
		return nil, fmt.Errorf("%s: requesting token for service account %s/%s: %w", a, a.Namespace, a.ServiceAccount, err)
	}
	return login(ctx, c, a, "auth/"+a.mount()+"/login", map[string]any{"role": a.Role, "jwt": jwt})
}

func (a *KubernetesAuth) mount() string { return NormalizeMountPath(a.MountPath, "kubernetes") }

func (a *KubernetesAuth) audiences() []string {
	if len(a.Audiences) == 0 {
		return []string{"vault"}
	}
	return a.Audiences
}

// String implements AuthMethod.
func (a *KubernetesAuth) String() string {
	return fmt.Sprintf("kubernetes auth (mount %q, role %q)", a.mount(), a.Role)
}

// AppRoleAuth logs in with Vault's AppRole auth method.
type AppRoleAuth struct {
	// MountPath is the auth mount; empty means "approle".
	MountPath string
	// RoleID is the role's ID.
	RoleID string
	// SecretID returns the secret ID, read when logging in so a rotated
	// secret ID is picked up on the next login.
	SecretID func(ctx context.Context) (string, error)
}

// Login implements AuthMethod.
func (a *AppRoleAuth) Login(ctx context.Context, c *vaultapi.Client) (*vaultapi.Secret, error) {
	if a.RoleID == "" || a.SecretID == nil {
		return nil, fmt.Errorf("%s: role ID and secret ID are required", a)
	}
	secretID, err := a.SecretID(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: reading secret ID: %w", a, err)
	}
	// Secrets made with `kubectl create secret --from-file` often end in a newline.
	if secretID = strings.TrimSpace(secretID); secretID == "" {
		return nil, fmt.Errorf("%s: secret ID is empty", a)
	}
	return login(ctx, c, a, "auth/"+a.mount()+"/login", map[string]any{"role_id": a.RoleID, "secret_id": secretID})
}

func (a *AppRoleAuth) mount() string { return NormalizeMountPath(a.MountPath, "approle") }

// String implements AuthMethod.
func (a *AppRoleAuth) String() string { return fmt.Sprintf("approle auth (mount %q)", a.mount()) }

// TokenAuth uses an existing Vault token. Login checks it with a self-lookup
// and returns a secret describing it, so renewable tokens are renewed.
type TokenAuth struct {
	// Token returns the token, read at every login.
	Token func(ctx context.Context) (string, error)
}

// Login implements AuthMethod.
func (a *TokenAuth) Login(ctx context.Context, c *vaultapi.Client) (*vaultapi.Secret, error) {
	if a.Token == nil {
		return nil, fmt.Errorf("%s: no token source", a)
	}
	tok, err := a.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: reading token: %w", a, err)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, fmt.Errorf("%s: token is empty", a)
	}
	c.SetToken(tok)
	self, err := c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: looking up token: %w", a, err)
	}
	if self == nil || self.Data == nil {
		return nil, fmt.Errorf("%s: looking up token: empty response", a)
	}
	ttl, _ := self.TokenTTL()
	renewable, _ := self.TokenIsRenewable()
	policies, _ := self.TokenPolicies()
	return &vaultapi.Secret{Auth: &vaultapi.SecretAuth{
		ClientToken:   tok,
		Policies:      policies,
		LeaseDuration: int(ttl / time.Second),
		Renewable:     renewable,
	}}, nil
}

// String implements AuthMethod.
func (a *TokenAuth) String() string { return "token auth" }

// NormalizeMountPath turns "/v1/auth/kubernetes", "auth/kubernetes/" or
// "kubernetes" into the mount name "kubernetes"; empty becomes def.
func NormalizeMountPath(p, def string) string {
	p = strings.Trim(p, "/")
	p = strings.TrimPrefix(p, "v1/")
	p = strings.TrimPrefix(p, "auth/")
	if p = strings.Trim(p, "/"); p == "" {
		return def
	}
	return p
}

// LoginError is returned when Vault refuses credentials or a login cannot be
// attempted; callers treat it as "the configuration or Vault's side is
// wrong", not as a transient failure, unless Transient says otherwise.
type LoginError struct {
	// Method describes the auth method (AuthMethod.String).
	Method string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *LoginError) Error() string {
	return "logging in to vault with " + e.Method + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *LoginError) Unwrap() error { return e.Err }

// Transient reports whether the login failed for a reason that may go away
// by itself: no response from Vault, or a 5xx/429 response.
func (e *LoginError) Transient() bool {
	code := StatusCode(e.Err)
	return code == 0 || code == 429 || code >= 500
}

func login(ctx context.Context, c *vaultapi.Client, m AuthMethod, path string, body map[string]any) (*vaultapi.Secret, error) {
	sec, err := c.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m, err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%s: %w", m, errors.New("vault returned no token"))
	}
	return sec, nil
}

// KubernetesFileAuth logs in with Vault's Kubernetes auth method, presenting
// the ServiceAccount token the kubelet projects into the pod (a projected
// volume with audience "vault"). The file is read at every login, so the
// kubelet's rotation of the token is picked up.
type KubernetesFileAuth struct {
	// MountPath is the auth mount; empty means "kubernetes".
	MountPath string
	// Role is the Vault role to log in as.
	Role string
	// TokenFile is the path of the projected ServiceAccount token.
	TokenFile string
}

// Login implements AuthMethod.
func (a *KubernetesFileAuth) Login(ctx context.Context, c *vaultapi.Client) (*vaultapi.Secret, error) {
	if a.Role == "" || a.TokenFile == "" {
		return nil, fmt.Errorf("%s: role and token file are required", a)
	}
	b, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("%s: reading service account token: %w", a, err)
	}
	jwt := strings.TrimSpace(string(b))
	if jwt == "" {
		return nil, fmt.Errorf("%s: service account token file %s is empty", a, a.TokenFile)
	}
	return login(ctx, c, a, "auth/"+NormalizeMountPath(a.MountPath, "kubernetes")+"/login", map[string]any{"role": a.Role, "jwt": jwt})
}

// String implements AuthMethod.
func (a *KubernetesFileAuth) String() string {
	return fmt.Sprintf("kubernetes auth (mount %q, role %q, token file %s)", NormalizeMountPath(a.MountPath, "kubernetes"), a.Role, a.TokenFile)
}

// CertAuth logs in with Vault's TLS certificate auth method: the client
// certificate configured in Config (ClientCertFile, ClientKeyFile) is the
// credential, presented in the TLS handshake of the login request. For
// components that cannot use Kubernetes auth (`keyward kms` runs before the
// apiserver).
type CertAuth struct {
	// MountPath is the auth mount; empty means "cert".
	MountPath string
	// Role names the cert auth role to log in as; empty lets Vault pick any
	// role whose CA matches the certificate.
	Role string
}

// Login implements AuthMethod.
func (a *CertAuth) Login(ctx context.Context, c *vaultapi.Client) (*vaultapi.Secret, error) {
	body := map[string]any{}
	if a.Role != "" {
		body["name"] = a.Role
	}
	return login(ctx, c, a, "auth/"+NormalizeMountPath(a.MountPath, "cert")+"/login", body)
}

// String implements AuthMethod.
func (a *CertAuth) String() string {
	return fmt.Sprintf("cert auth (mount %q, role %q)", NormalizeMountPath(a.MountPath, "cert"), a.Role)
}
