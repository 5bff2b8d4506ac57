// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/keyward-io/keyward/custody/vaultkv"
)

// Names of what StartVault configures. They match deploy/vault/ and the examples.
const (
	VaultRootPKIMount    = "pki"
	VaultIntPKIMount     = "pki_int"
	VaultKeywardRole     = "keyward"
	VaultBaselineRole    = "cert-manager"
	VaultCustodyMount    = "custody"
	VaultCustodyPrefix   = "tls"
	VaultKubernetesMount = "kubernetes"
	VaultAppRoleMount    = "approle"
	// VaultAudience is the audience Vault's Kubernetes auth roles require.
	VaultAudience = "vault"

	// Vault policy names, each loaded from deploy/vault/<name>.hcl.
	PolicyIssuer        = "keyward-issuer"
	PolicyCustodyWriter = "keyward-custody-writer"
	PolicyGuard         = "keyward-guard"
	PolicyConsumer      = "keyward-consumer"
	PolicyBaseline      = "cert-manager-baseline"
	// PolicyAdopter reads the custody records of cluster "east" (the
	// example in deploy/vault/keyward-adopter.hcl) for adoption.
	PolicyAdopter = "keyward-adopter"
	// PolicyRevoker may revoke certificates of pki_int by serial
	// (issuers' spec.revocation.auth).
	PolicyRevoker = "keyward-revoker"
)

// VaultOptions configure StartVault.
type VaultOptions struct {
	// Dir receives vault.log and vault-audit.log. Required.
	Dir string
	// AllowedDomains for the PKI roles; default example.com (with subdomains) and localhost.
	AllowedDomains []string
	// Unconfigured leaves the server as `vault server -dev` starts it: none of
	// the PKI, custody, audit, policies or auth that StartVault would add, and
	// RootCAPEM stays empty. For tests that configure Vault themselves, e.g.
	// with deploy/vault/setup.sh.
	Unconfigured bool
	// TLS serves HTTPS (`-dev-tls`, a CA Vault generates; Vault.TLSCAPEM),
	// which TLS certificate auth needs: the client certificate is presented
	// in the handshake.
	TLS bool
}

// Vault is a running Vault dev server configured like a production deployment:
// an offline-style root CA (pki) signing an intermediate (pki_int) with the
// keyward and cert-manager roles, KV v2 custody mount, a file audit device,
// AppRole auth, and one ACL policy per Keyward component. Kubernetes auth is
// added by ConfigureKubernetesAuth once an apiserver exists.
type Vault struct {
	// Addr is the server's address, http://127.0.0.1:<port>.
	Addr string
	// RootToken is the dev server's root token. Tests use it to set up and
	// inspect; Keyward components never get it.
	RootToken string
	// RootCAPEM is the root certificate every issued chain must verify against.
	RootCAPEM []byte
	// AuditLogPath is the file audit device's log.
	AuditLogPath string
	// LogPath is the server's own log.
	LogPath string
	// TLSCAPEM is the CA of the server's certificate, with VaultOptions.TLS.
	TLSCAPEM []byte

	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{}
}

// StartVault starts `bin/vault server -dev` on a free loopback port and
// configures it. The caller must Stop it.
func StartVault(ctx context.Context, opts VaultOptions) (*Vault, error) {
	bin, err := binary("vault")
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("starting vault: VaultOptions.Dir is required")
	}
	if len(opts.AllowedDomains) == 0 {
		opts.AllowedDomains = []string{"example.com", "localhost"}
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	v := &Vault{
		Addr:         fmt.Sprintf("http://127.0.0.1:%d", port),
		RootToken:    token,
		AuditLogPath: filepath.Join(opts.Dir, "vault-audit.log"),
		LogPath:      filepath.Join(opts.Dir, "vault.log"),
		exited:       make(chan struct{}),
	}
	if v.logFile, err = os.Create(v.LogPath); err != nil {
		return nil, fmt.Errorf("starting vault: %w", err)
	}
	args := []string{"server", "-dev", "-dev-root-token-id=" + token, fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port), "-dev-no-store-token"}
	tlsDir := filepath.Join(opts.Dir, "vault-tls")
	if opts.TLS {
		v.Addr = fmt.Sprintf("https://127.0.0.1:%d", port)
		if err := os.MkdirAll(tlsDir, 0o700); err != nil {
			return nil, err
		}
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+tlsDir)
	}
	v.cmd = exec.Command(bin, args...)
	// The dev server prints its root token and unseal key on start; keep that
	// out of shared logs by sending it only to this test's own file.
	v.cmd.Stdout, v.cmd.Stderr = v.logFile, v.logFile
	v.cmd.Env = append(os.Environ(), "VAULT_DISABLE_MLOCK=true", "HOME="+opts.Dir)
	if err := v.cmd.Start(); err != nil {
		v.logFile.Close()
		return nil, fmt.Errorf("starting vault: %w", err)
	}
	go func() { _ = v.cmd.Wait(); close(v.exited) }()
	if opts.TLS {
		if err := Poll(ctx, 30*time.Second, "vault's generated TLS CA", func(context.Context) (bool, error) {
			v.TLSCAPEM, err = os.ReadFile(filepath.Join(tlsDir, "vault-ca.pem"))
			return err == nil && len(v.TLSCAPEM) > 0, nil
		}); err != nil {
			_ = v.Stop()
			return nil, err
		}
	}

	if err := v.waitReady(ctx, 60*time.Second); err != nil {
		_ = v.Stop()
		return nil, err
	}
	if opts.Unconfigured {
		return v, nil
	}
	if err := v.configure(ctx, opts); err != nil {
		_ = v.Stop()
		return nil, fmt.Errorf("configuring vault: %w", err)
	}
	return v, nil
}

// Stop kills the server and waits for it to exit.
func (v *Vault) Stop() error {
	if v.cmd == nil || v.cmd.Process == nil {
		return nil
	}
	_ = v.cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot exit
	_ = v.cmd.Process.Kill()
	select {
	case <-v.exited:
	case <-time.After(10 * time.Second):
	}
	return v.logFile.Close()
}

// Pause freezes the server (SIGSTOP): connections hang, as with a network
// partition. kill(2) returns before every thread has stopped, and a request
// sent in that window is still answered; Pause returns only once all of the
// server's threads are stopped.
func (v *Vault) Pause() error {
	if err := v.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		stopped, err := allThreadsStopped(v.cmd.Process.Pid)
		if err != nil || stopped {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault (pid %d) not stopped 5s after SIGSTOP", v.cmd.Process.Pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// allThreadsStopped reports whether every thread of pid is in state T
// (stopped), from /proc/<pid>/task/*/stat.
func allThreadsStopped(pid int) (bool, error) {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return false, fmt.Errorf("listing threads of pid %d: %v", pid, err)
	}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited
		}
		// The state follows the parenthesised command name.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false, nil
		}
	}
	return true, nil
}

// Resume undoes Pause.
func (v *Vault) Resume() error { return v.cmd.Process.Signal(syscall.SIGCONT) }

// RootClient returns a new client authenticated with the root token.
func (v *Vault) RootClient() (*vaultapi.Client, error) {
	cfg := vaultapi.DefaultConfig()
	cfg.Address = v.Addr
	cfg.Timeout = 30 * time.Second
	if err := v.trust(cfg); err != nil {
		return nil, err
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating vault client for %s: %w", v.Addr, err)
	}
	c.SetToken(v.RootToken)
	return c, nil
}

// TokenForPolicies creates a short-lived (1h) token carrying only the given
// policies (plus Vault's "default", which allows self-lookup and renewal).
func (v *Vault) TokenForPolicies(ctx context.Context, policies ...string) (string, error) {
	c, err := v.RootClient()
	if err != nil {
		return "", err
	}
	sec, err := c.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
		Policies: policies,
		TTL:      "1h",
	})
	if err != nil {
		return "", fmt.Errorf("creating vault token for policies %v: %w", policies, err)
	}
	return sec.Auth.ClientToken, nil
}

// ClientForPolicies returns a client (no retries) authenticated with a fresh
// token carrying only the given policies, as a component's own Vault role
// would be.
func (v *Vault) ClientForPolicies(ctx context.Context, policies ...string) (*vaultapi.Client, error) {
	tok, err := v.TokenForPolicies(ctx, policies...)
	if err != nil {
		return nil, err
	}
	cfg := vaultapi.DefaultConfig()
	cfg.Address = v.Addr
	cfg.MaxRetries = 0
	if err := v.trust(cfg); err != nil {
		return nil, err
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating vault client for %s: %w", v.Addr, err)
	}
	c.SetToken(tok)
	return c, nil
}

// CustodyStore returns the custody store on the production mount layout,
// with a client from ClientForPolicies (so it can do only what the
// policies allow) and each call bounded by timeout.
func (v *Vault) CustodyStore(ctx context.Context, timeout time.Duration, policies ...string) (*vaultkv.Store, *vaultapi.Client, error) {
	c, err := v.ClientForPolicies(ctx, policies...)
	if err != nil {
		return nil, nil, err
	}
	s, err := vaultkv.New(c, vaultkv.Options{Timeout: timeout})
	if err != nil {
		return nil, nil, err
	}
	return s, c, nil
}

// AppRoleCredentials returns the role ID and a fresh secret ID of an AppRole role.
func (v *Vault) AppRoleCredentials(ctx context.Context, role string) (roleID, secretID string, err error) {
	c, err := v.RootClient()
	if err != nil {
		return "", "", err
	}
	sec, err := c.Logical().ReadWithContext(ctx, "auth/"+VaultAppRoleMount+"/role/"+role+"/role-id")
	if err != nil || sec == nil {
		return "", "", fmt.Errorf("reading approle role id of %s: %w", role, err)
	}
	roleID, _ = sec.Data["role_id"].(string)
	sec, err = c.Logical().WriteWithContext(ctx, "auth/"+VaultAppRoleMount+"/role/"+role+"/secret-id", nil)
	if err != nil || sec == nil {
		return "", "", fmt.Errorf("creating approle secret id of %s: %w", role, err)
	}
	secretID, _ = sec.Data["secret_id"].(string)
	return roleID, secretID, nil
}

// trust makes cfg trust the server's TLS CA (VaultOptions.TLS).
func (v *Vault) trust(cfg *vaultapi.Config) error {
	if len(v.TLSCAPEM) == 0 {
		return nil
	}
	return cfg.ConfigureTLS(&vaultapi.TLSConfig{CACertBytes: v.TLSCAPEM})
}

func (v *Vault) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 2 * time.Second}
	if len(v.TLSCAPEM) > 0 {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(v.TLSCAPEM)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	for {
		select {
		case <-v.exited:
			return fmt.Errorf("vault exited during start-up; see %s", v.LogPath)
		default:
		}
		resp, err := client.Get(v.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault at %s not healthy after %s; see %s", v.Addr, limit, v.LogPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// configure sets the server up as deploy/vault/setup.sh does on a real
// Vault, through v.Addr with v.RootToken: a dev server (StartVault) or the
// active node of a Raft cluster behind its front (StartVaultRaft), whose
// initial root token works the same.
func (v *Vault) configure(ctx context.Context, opts VaultOptions) error {
	c, err := v.RootClient()
	if err != nil {
		return err
	}
	if err := v.configurePKI(ctx, c, opts.AllowedDomains); err != nil {
		return err
	}
	sys := c.Sys()
	if err := sys.MountWithContext(ctx, VaultCustodyMount, &vaultapi.MountInput{
		Type: "kv", Options: map[string]string{"version": "2"},
	}); err != nil {
		return fmt.Errorf("mounting custody kv: %w", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, VaultCustodyMount+"/config", map[string]any{"max_versions": 5}); err != nil {
		return fmt.Errorf("configuring custody kv: %w", err)
	}
	if err := sys.EnableAuditWithOptionsWithContext(ctx, "file", &vaultapi.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": v.AuditLogPath},
	}); err != nil {
		return fmt.Errorf("enabling file audit: %w", err)
	}
	if err := v.loadPolicies(ctx, c); err != nil {
		return err
	}
	if err := sys.EnableAuthWithOptionsWithContext(ctx, VaultAppRoleMount, &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
		return fmt.Errorf("enabling approle auth: %w", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/"+VaultAppRoleMount+"/role/keyward-issuer", map[string]any{
		"token_policies": []string{PolicyIssuer}, "token_ttl": "15m", "token_max_ttl": "1h", "secret_id_ttl": "24h",
	}); err != nil {
		return fmt.Errorf("writing approle role: %w", err)
	}
	return v.configureTransit(ctx, c)
}

// configurePKI mounts the root CA (pki) and the intermediate it signs
// (pki_int) with the keyward and cert-manager roles, and records the root.
func (v *Vault) configurePKI(ctx context.Context, c *vaultapi.Client, allowedDomains []string) error {
	sys := c.Sys()
	if err := sys.MountWithContext(ctx, VaultRootPKIMount, &vaultapi.MountInput{
		Type: "pki", Config: vaultapi.MountConfigInput{MaxLeaseTTL: "87600h"},
	}); err != nil {
		return fmt.Errorf("mounting root pki: %w", err)
	}
	root, err := c.Logical().WriteWithContext(ctx, VaultRootPKIMount+"/root/generate/internal", map[string]any{
		"common_name": "Keyward Test Root CA", "key_type": "ec", "key_bits": 256, "ttl": "87600h",
	})
	if err != nil {
		return fmt.Errorf("generating root CA: %w", err)
	}
	v.RootCAPEM = []byte(root.Data["certificate"].(string) + "\n")

	if err := sys.MountWithContext(ctx, VaultIntPKIMount, &vaultapi.MountInput{
		Type: "pki", Config: vaultapi.MountConfigInput{MaxLeaseTTL: "43800h"},
	}); err != nil {
		return fmt.Errorf("mounting intermediate pki: %w", err)
	}
	csr, err := c.Logical().WriteWithContext(ctx, VaultIntPKIMount+"/intermediate/generate/internal", map[string]any{
		"common_name": "Keyward Test Intermediate CA", "key_type": "ec", "key_bits": 256,
	})
	if err != nil {
		return fmt.Errorf("generating intermediate CSR: %w", err)
	}
	signed, err := c.Logical().WriteWithContext(ctx, VaultRootPKIMount+"/root/sign-intermediate", map[string]any{
		"csr": csr.Data["csr"], "format": "pem_bundle", "ttl": "43800h",
	})
	if err != nil {
		return fmt.Errorf("signing intermediate: %w", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, VaultIntPKIMount+"/intermediate/set-signed", map[string]any{
		"certificate": signed.Data["certificate"],
	}); err != nil {
		return fmt.Errorf("installing intermediate: %w", err)
	}
	for _, role := range []string{VaultKeywardRole, VaultBaselineRole} {
		if _, err := c.Logical().WriteWithContext(ctx, VaultIntPKIMount+"/roles/"+role, map[string]any{
			"allowed_domains":    allowedDomains,
			"allow_subdomains":   true,
			"allow_bare_domains": true,
			"allow_localhost":    true,
			"allow_ip_sans":      true,
			"allowed_uri_sans":   []string{"spiffe://*"},
			"key_type":           "any",
			"require_cn":         false,
			"max_ttl":            "72h",
		}); err != nil {
			return fmt.Errorf("writing pki role %s: %w", role, err)
		}
	}
	return nil
}

// configureTransit is deploy/vault/setup.sh's KMS=true part: the Transit key
// the apiserver's KMS plugin wraps DEK seeds with, and its AppRole role.
func (v *Vault) configureTransit(ctx context.Context, c *vaultapi.Client) error {
	if err := c.Sys().MountWithContext(ctx, VaultTransitMount, &vaultapi.MountInput{Type: "transit"}); err != nil {
		return fmt.Errorf("mounting transit: %w", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, VaultTransitMount+"/keys/"+VaultTransitKey, map[string]any{"type": "aes256-gcm96"}); err != nil {
		return fmt.Errorf("creating transit key: %w", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/"+VaultAppRoleMount+"/role/"+VaultKMSRole, map[string]any{
		"token_policies": []string{PolicyKMS}, "token_ttl": "15m", "token_max_ttl": "1h", "secret_id_ttl": "24h",
	}); err != nil {
		return fmt.Errorf("writing approle role %s: %w", VaultKMSRole, err)
	}
	return nil
}

// loadPolicies installs every deploy/vault/*.hcl as a policy of the same name,
// so tests run with exactly the policies operators are told to install.
func (v *Vault) loadPolicies(ctx context.Context, c *vaultapi.Client) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(root, "deploy", "vault", "*.hcl"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no policies in deploy/vault: %v", err)
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("reading policy %s: %w", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".hcl")
		if err := c.Sys().PutPolicyWithContext(ctx, name, string(body)); err != nil {
			return fmt.Errorf("installing policy %s: %w", name, err)
		}
	}
	return nil
}

// KubernetesAuthRole binds a Vault role to a ServiceAccount.
type KubernetesAuthRole struct {
	Name           string
	ServiceAccount string
	Namespace      string
	Policies       []string
}

// DefaultKubernetesAuthRoles are the roles a production install creates: one
// per Keyward component (all bound to the keyward ServiceAccount) plus
// cert-manager's built-in Vault issuer for baselines.
func DefaultKubernetesAuthRoles() []KubernetesAuthRole {
	return []KubernetesAuthRole{
		{Name: "keyward-issuer", ServiceAccount: KeywardServiceAccount, Namespace: KeywardNamespace, Policies: []string{PolicyIssuer}},
		{Name: "keyward-custody-writer", ServiceAccount: KeywardServiceAccount, Namespace: KeywardNamespace, Policies: []string{PolicyCustodyWriter}},
		{Name: "keyward-guard", ServiceAccount: KeywardServiceAccount, Namespace: KeywardNamespace, Policies: []string{PolicyGuard}},
		{Name: "keyward-revoker", ServiceAccount: KeywardServiceAccount, Namespace: KeywardNamespace, Policies: []string{PolicyRevoker}},
		{Name: "keyward-adopter", ServiceAccount: KeywardServiceAccount, Namespace: KeywardNamespace, Policies: []string{PolicyAdopter}},
		{Name: "cert-manager", ServiceAccount: CertManagerServiceAccount, Namespace: CertManagerNamespace, Policies: []string{PolicyBaseline}},
	}
}

// ConfigureKubernetesAuth enables Kubernetes auth at mount, checking tokens
// through the given apiserver's TokenReview API with reviewerJWT, and
// writes the roles.
func (v *Vault) ConfigureKubernetesAuth(ctx context.Context, mount, host string, caPEM []byte, reviewerJWT string, roles []KubernetesAuthRole) error {
	c, err := v.RootClient()
	if err != nil {
		return err
	}
	if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &vaultapi.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		return fmt.Errorf("enabling kubernetes auth: %w", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/"+mount+"/config", map[string]any{
		"kubernetes_host":      host,
		"kubernetes_ca_cert":   string(caPEM),
		"token_reviewer_jwt":   reviewerJWT,
		"disable_local_ca_jwt": true,
	}); err != nil {
		return fmt.Errorf("configuring kubernetes auth: %w", err)
	}
	for _, r := range roles {
		if _, err := c.Logical().WriteWithContext(ctx, "auth/"+mount+"/role/"+r.Name, map[string]any{
			"bound_service_account_names":      []string{r.ServiceAccount},
			"bound_service_account_namespaces": []string{r.Namespace},
			"audience":                         VaultAudience,
			"token_policies":                   r.Policies,
			"token_ttl":                        "15m",
			"token_max_ttl":                    "1h",
		}); err != nil {
			return fmt.Errorf("writing kubernetes auth role %s: %w", r.Name, err)
		}
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "root-" + hex.EncodeToString(b), nil
}

// EnableCertAuth enables Vault's TLS certificate auth with a role trusting a
// new client CA, and writes a client certificate and key signed by it to
// dir: what an operator sets up with setup.sh's KMS_CERT_FILE. The role's
// tokens carry policies.
func (v *Vault) EnableCertAuth(ctx context.Context, dir, role string, policies ...string) (certFile, keyFile string, err error) {
	caPEM, certPEM, keyPEM, err := clientCertificate("keyward-kms client")
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	c, err := v.RootClient()
	if err != nil {
		return "", "", err
	}
	if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, "cert", &vaultapi.EnableAuthOptions{Type: "cert"}); err != nil {
		return "", "", fmt.Errorf("enabling cert auth: %w", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/cert/certs/"+role, map[string]any{
		"certificate": string(caPEM), "token_policies": policies, "token_ttl": "15m", "token_max_ttl": "1h",
	}); err != nil {
		return "", "", fmt.Errorf("writing cert auth role %s: %w", role, err)
	}
	return certFile, keyFile, nil
}

// clientCertificate makes a CA and a client-auth certificate signed by it.
func clientCertificate(cn string) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn + " CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
