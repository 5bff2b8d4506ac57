// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vault

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNormalizeMountPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, def, want string }{
		{"/v1/auth/kubernetes", "x", "kubernetes"},
		{"/v1/auth/kubernetes/", "x", "kubernetes"},
		{"auth/k8s-prod", "x", "k8s-prod"},
		{"kubernetes", "x", "kubernetes"},
		{"/v1/auth/team/k8s", "x", "team/k8s"},
		{"", "approle", "approle"},
		{"/", "approle", "approle"},
	}
	for _, tc := range tests {
		if got := NormalizeMountPath(tc.in, tc.def); got != tc.want {
			t.Errorf("NormalizeMountPath(%q, %q) = %q, want %q", tc.in, tc.def, got, tc.want)
		}
	}
}

type fakeTokens struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (f *fakeTokens) RequestToken(_ context.Context, ns, sa string, aud []string, exp time.Duration) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, ns+"/"+sa+" "+aud[0]+" "+exp.String())
	return "jwt-for-" + sa, f.err
}

// fakeVault answers logins on httptest; the real server is exercised by the
// issuer's integration tests. It records the last login body and headers.
type fakeVault struct {
	mu     sync.Mutex
	path   string
	body   map[string]any
	header http.Header
	status int
}

func (f *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.path, f.header = r.URL.Path, r.Header.Clone()
	f.body = map[string]any{}
	_ = json.NewDecoder(r.Body).Decode(&f.body)
	if f.status != 0 {
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(`{"errors":["permission denied"]}`))
		return
	}
	_, _ = w.Write([]byte(`{"auth":{"client_token":"s.issued","lease_duration":0,"renewable":false}}`))
}

func TestKubernetesAuthLogin(t *testing.T) {
	t.Parallel()
	fv := &fakeVault{}
	srv := httptest.NewServer(fv)
	defer srv.Close()
	tokens := &fakeTokens{}
	auth := &KubernetesAuth{MountPath: "/v1/auth/k8s", Role: "keyward-issuer", Namespace: "keyward-system", ServiceAccount: "keyward", Tokens: tokens}
	c, err := Login(context.Background(), Config{Server: srv.URL, Namespace: "team-a"}, auth, LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.API().Token() != "s.issued" {
		t.Errorf("token not installed on the client")
	}
	if fv.path != "/v1/auth/k8s/login" || fv.body["role"] != "keyward-issuer" || fv.body["jwt"] != "jwt-for-keyward" {
		t.Errorf("login = %s %v, want role and TokenRequest JWT at /v1/auth/k8s/login", fv.path, fv.body)
	}
	if fv.header.Get("X-Vault-Namespace") != "team-a" {
		t.Errorf("X-Vault-Namespace = %q, want team-a", fv.header.Get("X-Vault-Namespace"))
	}
	if fv.header.Get("X-Vault-Token") != "" {
		t.Errorf("login carried a token")
	}
	if len(tokens.calls) != 1 || tokens.calls[0] != "keyward-system/keyward vault 10m0s" {
		t.Errorf("token requests = %v, want one for keyward-system/keyward, audience vault", tokens.calls)
	}
}

func TestLoginErrors(t *testing.T) {
	t.Parallel()
	fv := &fakeVault{status: http.StatusForbidden}
	srv := httptest.NewServer(fv)
	defer srv.Close()

	_, err := Login(context.Background(), Config{Server: srv.URL}, &AppRoleAuth{RoleID: "r", SecretID: func(context.Context) (string, error) { return "s", nil }}, LoginOptions{})
	var le *LoginError
	if !errors.As(err, &le) || le.Transient() || StatusCode(err) != 403 || !slices.Contains(ErrorMessages(err), "permission denied") {
		t.Errorf("refused login: err = %v, want a non-transient *LoginError carrying 403", err)
	}

	_, err = Login(context.Background(), Config{Server: srv.URL}, &KubernetesAuth{Role: "r", ServiceAccount: "sa", Tokens: &fakeTokens{err: errors.New("forbidden")}}, LoginOptions{})
	if !errors.As(err, &le) {
		t.Errorf("token request failure: err = %v, want *LoginError", err)
	}

	srv.Close()
	_, err = Login(context.Background(), Config{Server: srv.URL}, &TokenAuth{Token: func(context.Context) (string, error) { return "t", nil }}, LoginOptions{})
	if !errors.As(err, &le) || !le.Transient() {
		t.Errorf("unreachable vault: err = %v, want a transient *LoginError", err)
	}

	if _, err := NewClient(Config{Server: "vault.example.com"}); err == nil {
		t.Error("NewClient accepted a server without scheme")
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	var logins atomic.Int32
	login := func(context.Context) (*Client, error) {
		logins.Add(1)
		return &Client{}, nil
	}
	var c Cache
	ctx := context.Background()
	a, _ := c.Get(ctx, "iss", "uid/1", login)
	b, _ := c.Get(ctx, "iss", "uid/1", login)
	if a != b || logins.Load() != 1 {
		t.Errorf("same version logged in %d times", logins.Load())
	}
	d, _ := c.Get(ctx, "iss", "uid/2", login)
	if d == a || logins.Load() != 2 || c.Len() != 1 {
		t.Errorf("new version: logins %d, entries %d", logins.Load(), c.Len())
	}
	if _, err := c.Get(ctx, "other", "v", func(context.Context) (*Client, error) { return nil, errors.New("refused") }); err == nil || c.Len() != 1 {
		t.Errorf("failed login cached (entries %d) or error lost (%v)", c.Len(), err)
	}
	c.Forget("iss")
	if c.Len() != 0 {
		t.Errorf("Forget left %d entries", c.Len())
	}
}
