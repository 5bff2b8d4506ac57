// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/keyward-io/keyward/e2e/framework"
)

// TestVaultSetupScript is the operator's story for deploy/vault/setup.sh: a
// fresh Vault (a three-node Raft cluster, as production runs it),
// configured only by the script, must behave like the Vault the
// framework configures (and the README promises): every Keyward component
// logs in with its own Kubernetes auth role and can do its job and nothing
// more, the PKI chain ends at the new root, and requests are audited.
func TestVaultSetupScript(t *testing.T) {
	env := framework.StartForTest(t, framework.Options{WithoutCertManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dir := filepath.Join(env.Dir, "setup-vault")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A production-shaped Vault: three servers on integrated storage (Raft),
	// initialised and unsealed, nothing configured; the script configures
	// it through the one address that reaches the active node.
	cluster, err := framework.StartVaultRaft(ctx, framework.RaftOptions{Dir: dir, Unconfigured: true})
	if err != nil {
		t.Fatalf("starting the unconfigured vault raft cluster: %v", err)
	}
	t.Cleanup(cluster.Stop)
	v := cluster.Vault
	root, err := v.RootClient()
	if err != nil {
		t.Fatal(err)
	}

	// What the operator brings: the apiserver's CA and a token reviewer bound
	// to system:auth-delegator. envtest runs no token controller, so the
	// script's own Secret-based reviewer could never get a token here. Both
	// files stay out of the kept artefacts: the reviewer token is a credential.
	secrets := t.TempDir()
	caFile := filepath.Join(secrets, "kubernetes-ca.pem")
	if len(env.RESTConfig.CAData) == 0 {
		t.Fatal("the test apiserver's REST config has no CA data")
	}
	if err := os.WriteFile(caFile, env.RESTConfig.CAData, 0o600); err != nil {
		t.Fatal(err)
	}
	reviewerFile := filepath.Join(secrets, "reviewer.jwt")
	if err := os.WriteFile(reviewerFile, []byte(createTokenReviewer(ctx, t, env)), 0o600); err != nil {
		t.Fatal(err)
	}
	ensureKeywardServiceAccount(ctx, t, env)

	scriptEnv := []string{
		"VAULT_ADDR=" + v.Addr,
		"VAULT_TOKEN=" + v.RootToken,
		"KUBERNETES_HOST=" + env.RESTConfig.Host,
		"KUBERNETES_CA_FILE=" + caFile,
		"KUBERNETES_REVIEWER_JWT_FILE=" + reviewerFile,
		// The script's default is the path in Vault's container image.
		"AUDIT_FILE=" + v.AuditLogPath,
		// The KMS plugin's Transit key and AppRole role too.
		"KMS=true",
		"KMS_SECRET_ID_FILE=" + filepath.Join(secrets, "kms-secret-id"),
	}

	// (a) Idempotent: the second run succeeds, creates nothing and keeps both CAs.
	first := runSetupScript(ctx, t, dir, "first", scriptEnv)
	rootCA, intCA := readCA(ctx, t, root, "pki/cert/ca"), readCA(ctx, t, root, "pki_int/cert/ca")
	if !strings.Contains(first, rootCA) {
		t.Errorf("the script did not print the root CA it created")
	}
	if named := readCA(ctx, t, root, "pki_int/issuer/intermediate"); named != intCA {
		t.Errorf("pki_int issuer named intermediate is not the default (signing) issuer")
	}
	second := runSetupScript(ctx, t, dir, "second", scriptEnv)
	for _, created := range []string{"enabling", "generating", "creating"} {
		if strings.Contains(second, "==> "+created) {
			t.Errorf("second run is not a no-op: its output has %q lines:\n%s", created, second)
		}
	}
	if got := readCA(ctx, t, root, "pki/cert/ca"); got != rootCA {
		t.Errorf("second run replaced the root CA")
	}
	if got := readCA(ctx, t, root, "pki_int/cert/ca"); got != intCA {
		t.Errorf("second run replaced the intermediate CA")
	}

	saToken, err := env.ServiceAccountToken(ctx, framework.KeywardNamespace, framework.KeywardServiceAccount, framework.VaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	const recordPath = "custody/data/tls/ns/name"
	const keyMaterial = "not-a-real-key-f3a9c1"

	// (b) The custody writer can write a record and cannot read it back.
	writer := kubernetesLogin(ctx, t, v, "keyward-custody-writer", saToken, "keyward-custody-writer")
	if _, err := writer.Logical().WriteWithContext(ctx, recordPath, map[string]any{
		"data": map[string]any{"tls.key": keyMaterial},
	}); err != nil {
		t.Fatalf("custody writer writing %s: %v", recordPath, err)
	}
	_, err = writer.Logical().ReadWithContext(ctx, recordPath)
	expectStatus(t, err, http.StatusForbidden, "custody writer reading "+recordPath)
	stored, err := root.Logical().ReadWithContext(ctx, recordPath)
	if err != nil || stored == nil {
		t.Fatalf("root reading %s: %v", recordPath, err)
	}
	if data, _ := stored.Data["data"].(map[string]any); data["tls.key"] != keyMaterial {
		t.Errorf("the custody writer's record did not land in %s", recordPath)
	}

	// (c) The issuer signs a CSR with its role; the chain ends at the new root.
	issuer := kubernetesLogin(ctx, t, v, "keyward-issuer", saToken, "keyward-issuer")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr := string(newCSR(t, key, "x.example.com"))
	signed, err := issuer.Logical().WriteWithContext(ctx, "pki_int/sign/keyward", map[string]any{"csr": csr})
	if err != nil || signed == nil {
		t.Fatalf("issuer signing a CSR for x.example.com: %v", err)
	}
	chain := signed.Data["certificate"].(string) + "\n" + signed.Data["issuing_ca"].(string) + "\n"
	leaf := verifyChain(t, []byte(chain), []byte(rootCA+"\n"), "x.example.com")
	if want := v.Addr + "/v1/pki_int/ca"; !slices.Contains(leaf.IssuingCertificateURL, want) {
		t.Errorf("leaf AIA issuers = %v, want %s", leaf.IssuingCertificateURL, want)
	}
	if inter := parsePEMCert(t, intCA); !slices.Contains(inter.IssuingCertificateURL, v.Addr+"/v1/pki/ca") {
		t.Errorf("intermediate AIA issuers = %v, want %s/v1/pki/ca", inter.IssuingCertificateURL, v.Addr)
	}
	if bytes.Equal(env.Vault.RootCAPEM, []byte(rootCA+"\n")) {
		t.Errorf("the script's root CA is the framework Vault's: the check above proves nothing")
	}
	_, err = issuer.Logical().WriteWithContext(ctx, "pki_int/sign/cert-manager", map[string]any{"csr": csr})
	expectStatus(t, err, http.StatusForbidden, "issuer signing with the cert-manager role")
	_, err = issuer.Logical().WriteWithContext(ctx, "pki_int/sign/keyward", map[string]any{"csr": string(newCSR(t, key, "x.example.org"))})
	expectStatus(t, err, http.StatusBadRequest, "issuer signing for a domain outside PKI_DOMAINS")

	// (d) The guard reads a version's field names (the subkeys endpoint,
	// where its description is) and metadata, and nothing else.
	guard := kubernetesLogin(ctx, t, v, "keyward-guard", saToken, "keyward-guard")
	sub, err := guard.Logical().ReadWithContext(ctx, "custody/subkeys/tls/ns/name")
	if err != nil || sub == nil {
		t.Fatalf("guard reading the record's subkeys: %v", err)
	}
	keys, _ := sub.Data["subkeys"].(map[string]any)
	if v, named := keys["tls.key"]; !named || v != nil {
		t.Errorf("guard's subkeys read = %v, want the field tls.key named with no value", sub.Data["subkeys"])
	}
	if raw, _ := json.Marshal(sub.Data); bytes.Contains(raw, []byte(keyMaterial)) {
		t.Errorf("guard's subkeys read returned the key material")
	}
	meta, err := guard.Logical().ReadWithContext(ctx, "custody/metadata/tls/ns/name")
	if err != nil || meta == nil {
		t.Fatalf("guard reading custody metadata: %v", err)
	}
	if meta.Data["current_version"] == nil {
		t.Errorf("custody metadata has no current_version: %v", meta.Data)
	}
	_, err = guard.Logical().WriteWithContext(ctx, recordPath, map[string]any{"data": map[string]any{"tls.key": "x"}})
	expectStatus(t, err, http.StatusForbidden, "guard writing "+recordPath)
	_, err = guard.Logical().ReadWithContext(ctx, recordPath)
	expectStatus(t, err, http.StatusForbidden, "guard reading "+recordPath)

	// (e) The KMS plugin's AppRole login can wrap and unwrap with its one
	// Transit key and do nothing else: not read, rotate or delete the key.
	kmsTransitChecks(ctx, t, v, root, filepath.Join(secrets, "kms-secret-id"))

	// (f) The file audit device is on and records custody traffic, with the
	// key material HMAC'd rather than in clear.
	devices, err := root.Sys().ListAuditWithContext(ctx)
	if err != nil {
		t.Fatalf("listing audit devices: %v", err)
	}
	dev, ok := devices["file/"]
	if !ok || dev.Type != "file" || dev.Options["file_path"] != v.AuditLogPath {
		t.Fatalf("audit devices = %+v, want file/ writing %s", devices, v.AuditLogPath)
	}
	audit, err := os.ReadFile(v.AuditLogPath)
	if err != nil {
		t.Fatalf("reading the audit log: %v", err)
	}
	if !bytes.Contains(audit, []byte(recordPath)) {
		t.Errorf("audit log has no entry for %s", recordPath)
	}
	if bytes.Contains(audit, []byte(keyMaterial)) {
		t.Errorf("audit log holds custody key material in clear")
	}
}

// runSetupScript runs deploy/vault/setup.sh with a minimal environment (no
// inherited VAULT_* or kubeconfig) and returns its combined output, also kept
// in dir/setup-<name>.log. The output never holds tokens: the script prints
// only progress and the root CA.
func runSetupScript(ctx context.Context, t *testing.T, dir, name string, extraEnv []string) string {
	t.Helper()
	repo, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := framework.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repo, "deploy", "vault", "setup.sh"))
	cmd.Dir = dir
	cmd.Env = append([]string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + dir,
		// With the CA and reviewer given, the script must not need kubectl;
		// a kubeconfig that does not exist makes any kubectl call fail.
		"KUBECONFIG=" + filepath.Join(dir, "no-such-kubeconfig"),
	}, extraEnv...)
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(filepath.Join(dir, "setup-"+name+".log"), out, 0o644)
	if err != nil {
		t.Fatalf("%s run of setup.sh: %v\n%s", name, err, out)
	}
	return string(out)
}

// createTokenReviewer creates a ServiceAccount bound to system:auth-delegator,
// as the README asks of operators who bring their own reviewer, and returns
// a one-hour token for it.
func createTokenReviewer(ctx context.Context, t *testing.T, env *framework.Env) string {
	t.Helper()
	const ns, name = "vault-setup", "setup-token-reviewer"
	if err := env.CreateNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kubernetes.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating reviewer ServiceAccount: %v", err)
	}
	if _, err := env.Kubernetes.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("binding reviewer to system:auth-delegator: %v", err)
	}
	tr, err := env.Kubernetes.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting reviewer token: %v", err)
	}
	return tr.Status.Token
}

// ensureKeywardServiceAccount creates keyward-system/keyward unless the
// framework already has (as a Helm install would).
func ensureKeywardServiceAccount(ctx context.Context, t *testing.T, env *framework.Env) {
	t.Helper()
	if err := env.CreateNamespace(ctx, framework.KeywardNamespace, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kubernetes.CoreV1().ServiceAccounts(framework.KeywardNamespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: framework.KeywardServiceAccount, Namespace: framework.KeywardNamespace},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating Keyward's ServiceAccount: %v", err)
	}
}

// kubernetesLogin logs in to v with Kubernetes auth and checks that the token
// carries exactly the role's policy (plus default) and the 15-minute TTL the
// README promises.
func kubernetesLogin(ctx context.Context, t *testing.T, v *framework.Vault, role, jwt, policy string) *vaultapi.Client {
	t.Helper()
	root, err := v.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	c, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.ClearToken()
	sec, err := c.Logical().WriteWithContext(ctx, "auth/kubernetes/login", map[string]any{"role": role, "jwt": jwt})
	if err != nil || sec == nil || sec.Auth == nil {
		t.Fatalf("kubernetes auth login as role %s: %v", role, err)
	}
	if got := slices.Sorted(slices.Values(sec.Auth.TokenPolicies)); !slices.Equal(got, []string{"default", policy}) {
		t.Errorf("role %s token policies = %v, want [default %s]", role, got, policy)
	}
	if sec.Auth.LeaseDuration != int((15 * time.Minute).Seconds()) {
		t.Errorf("role %s token TTL = %ds, want 900s", role, sec.Auth.LeaseDuration)
	}
	c.SetToken(sec.Auth.ClientToken)
	return c
}

// readCA returns the certificate PEM at a PKI path (<mount>/cert/ca or
// <mount>/issuer/<ref>).
func readCA(ctx context.Context, t *testing.T, c *vaultapi.Client, path string) string {
	t.Helper()
	sec, err := c.Logical().ReadWithContext(ctx, path)
	if err != nil || sec == nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	pemCA, _ := sec.Data["certificate"].(string)
	if pemCA == "" {
		t.Fatalf("%s holds no certificate", path)
	}
	return strings.TrimSpace(pemCA)
}

// parsePEMCert parses the first certificate of a PEM string.
func parsePEMCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		t.Fatalf("no PEM block in certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parsing certificate: %v", err)
	}
	return c
}

// expectStatus fails unless err is a Vault response error with the given status.
func expectStatus(t *testing.T, err error, status int, what string) {
	t.Helper()
	var re *vaultapi.ResponseError
	switch {
	case err == nil:
		t.Errorf("%s succeeded, want HTTP %d", what, status)
	case !errors.As(err, &re):
		t.Errorf("%s: %v, want a Vault response with HTTP %d", what, err, status)
	case re.StatusCode != status:
		t.Errorf("%s: HTTP %d (%s), want %d", what, re.StatusCode, strings.Join(re.Errors, "; "), status)
	}
}

// kmsTransitChecks logs in as the script's keyward-kms AppRole role, with the
// secret ID the script wrote, and checks the keyward-kms policy for real.
func kmsTransitChecks(ctx context.Context, t *testing.T, v *framework.Vault, root *vaultapi.Client, secretIDFile string) {
	t.Helper()
	roleID, err := root.Logical().ReadWithContext(ctx, "auth/approle/role/keyward-kms/role-id")
	if err != nil || roleID == nil {
		t.Fatalf("reading the keyward-kms role ID: %v", err)
	}
	secretID, err := os.ReadFile(secretIDFile)
	if err != nil || len(bytes.TrimSpace(secretID)) == 0 {
		t.Fatalf("the script wrote no KMS secret ID to %s: %v", secretIDFile, err)
	}
	if fi, err := os.Stat(secretIDFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("KMS secret ID file mode: %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	login, err := root.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{
		"role_id": roleID.Data["role_id"], "secret_id": string(bytes.TrimSpace(secretID)),
	})
	if err != nil || login == nil || login.Auth == nil {
		t.Fatalf("keyward-kms AppRole login: %v", err)
	}
	kms, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	kms.SetToken(login.Auth.ClientToken)
	enc, err := kms.Logical().WriteWithContext(ctx, "transit/encrypt/kubernetes-secrets", map[string]any{"plaintext": "c2VlZA=="})
	if err != nil || enc == nil {
		t.Fatalf("keyward-kms encrypting: %v", err)
	}
	dec, err := kms.Logical().WriteWithContext(ctx, "transit/decrypt/kubernetes-secrets", map[string]any{"ciphertext": enc.Data["ciphertext"]})
	if err != nil || dec == nil || dec.Data["plaintext"] != "c2VlZA==" {
		t.Fatalf("keyward-kms decrypting: %v", err)
	}
	_, err = kms.Logical().ReadWithContext(ctx, "transit/keys/kubernetes-secrets")
	expectStatus(t, err, http.StatusForbidden, "keyward-kms reading its key")
	_, err = kms.Logical().WriteWithContext(ctx, "transit/keys/kubernetes-secrets/rotate", nil)
	expectStatus(t, err, http.StatusForbidden, "keyward-kms rotating its key")
	_, err = kms.Logical().WriteWithContext(ctx, "transit/encrypt/other", map[string]any{"plaintext": "c2VlZA=="})
	expectStatus(t, err, http.StatusForbidden, "keyward-kms encrypting with another key")
	key, err := root.Logical().ReadWithContext(ctx, "transit/keys/kubernetes-secrets")
	if err != nil || key == nil || key.Data["deletion_allowed"] != false || key.Data["exportable"] != false {
		t.Errorf("transit key kubernetes-secrets: %v (%v), want deletion and export forbidden", key, err)
	}
}
