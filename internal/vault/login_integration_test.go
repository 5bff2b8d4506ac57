// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package vault_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/internal/vault"
)

// TestTokenLifetimeIntegration logs in with AppRole to the real Vault dev
// server with a role whose tokens live a few seconds, and checks that the
// client keeps working past the token's max TTL: renewed first, then logged
// in again in the background.
func TestTokenLifetimeIntegration(t *testing.T) {
	v := framework.VaultForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root, err := v.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().WriteWithContext(ctx, "auth/"+framework.VaultAppRoleMount+"/role/short-lived", map[string]any{
		"token_policies": []string{framework.PolicyIssuer}, "token_ttl": "2s", "token_max_ttl": "4s",
	}); err != nil {
		t.Fatal(err)
	}
	roleID, secretID, err := v.AppRoleCredentials(ctx, "short-lived")
	if err != nil {
		t.Fatal(err)
	}
	c, err := vault.Login(ctx, vault.Config{Server: v.Addr, Timeout: 10 * time.Second}, &vault.AppRoleAuth{
		RoleID: roleID, SecretID: func(context.Context) (string, error) { return secretID, nil },
	}, vault.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := c.API().Token()

	deadline := time.Now().Add(10 * time.Second) // well past the 4s max TTL
	for time.Now().Before(deadline) {
		if _, err := c.API().Auth().Token().LookupSelfWithContext(ctx); err != nil {
			t.Fatalf("token stopped working at %s: %v", time.Until(deadline), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if c.API().Token() == first {
		t.Error("client still holds its first token after the max TTL: no re-login happened")
	}
}
