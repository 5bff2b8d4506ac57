// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package kmsplugin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	kmsapi "k8s.io/kms/apis/v2"
	"sigs.k8s.io/yaml"

	"github.com/keyward-io/keyward/e2e/framework"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	good := func() *Options {
		o := NewOptions()
		o.VaultServer, o.RoleID, o.SecretIDFile = "https://vault:8200", "role", "/etc/secret-id"
		return o
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"approle", func(*Options) {}, ""},
		{"cert", func(o *Options) { o.Auth, o.ClientCertFile, o.ClientKeyFile = "cert", "c.pem", "k.pem" }, ""},
		{"no vault", func(o *Options) { o.VaultServer = "" }, "--vault-server is required"},
		{"approle without secret id", func(o *Options) { o.SecretIDFile = "" }, "--approle-secret-id-file"},
		{"cert without key", func(o *Options) { o.Auth, o.ClientCertFile = "cert", "c.pem" }, "--vault-client-key"},
		{"unknown auth", func(o *Options) { o.Auth = "kubernetes" }, `--auth "kubernetes"`},
		{"key with a slash", func(o *Options) { o.TransitKey = "a/b" }, "--transit-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := good()
			tc.mutate(o)
			err := o.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestShippedManifests: the static pod's arguments are valid flags of
// `keyward kms` and its socket is the one the shipped EncryptionConfiguration
// dials; the EncryptionConfiguration has the plugin as its only provider.
func TestShippedManifests(t *testing.T) {
	t.Parallel()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var pod struct {
		Spec struct {
			Containers []struct {
				Args []string `json:"args"`
			} `json:"containers"`
		} `json:"spec"`
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "kms", "keyward-kms.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &pod); err != nil || len(pod.Spec.Containers) != 1 {
		t.Fatalf("deploy/kms/keyward-kms.yaml: %v (%d containers)", err, len(pod.Spec.Containers))
	}
	args := pod.Spec.Containers[0].Args
	if len(args) == 0 || args[0] != "kms" {
		t.Fatalf("static pod args %v: want the kms mode first", args)
	}
	o := NewOptions()
	fs := pflag.NewFlagSet("keyward kms", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatalf("static pod args: %v", err)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("static pod args do not validate: %v", err)
	}
	var ec apiserverv1.EncryptionConfiguration
	b, err = os.ReadFile(filepath.Join(root, "deploy", "kms", "encryption-configuration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &ec); err != nil {
		t.Fatalf("encryption-configuration.yaml: %v", err)
	}
	if len(ec.Resources) != 1 || len(ec.Resources[0].Providers) != 1 || ec.Resources[0].Providers[0].KMS == nil {
		t.Fatalf("encryption-configuration.yaml: want exactly one provider, kms, got %+v", ec.Resources)
	}
	kms := ec.Resources[0].Providers[0].KMS
	if kms.APIVersion != "v2" || kms.Endpoint != "unix://"+o.Socket || kms.Name != framework.KMSProviderName {
		t.Errorf("kms provider %+v: want v2 on unix://%s named %s", kms, o.Socket, framework.KMSProviderName)
	}
	if o.VaultTimeout >= kms.Timeout.Duration {
		t.Errorf("--vault-timeout %s must stay under the provider timeout %s", o.VaultTimeout, kms.Timeout.Duration)
	}
}

// TestRunServesTheSocket runs `keyward kms` against a real Vault and talks
// to it over its unix socket with the KMS v2 gRPC API, as the apiserver
// does: a bad AppRole secret ID is an unhealthy Status naming the failed
// login (and nothing is encrypted); once the secret ID file is fixed, the
// plugin logs in by itself and encrypts and decrypts.
func TestRunServesTheSocket(t *testing.T) {
	v := framework.VaultForTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	roleID, secretID, err := v.AppRoleCredentials(ctx, framework.VaultKMSRole)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kms-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	secretFile := filepath.Join(dir, "secret-id")
	if err := os.WriteFile(secretFile, []byte("not-the-secret-id"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	o.Socket, o.VaultServer, o.RoleID, o.SecretIDFile = filepath.Join(dir, "kms.sock"), v.Addr, roleID, secretFile
	o.TransitKey, o.MetricsAddr, o.MaxReloginBackoff = framework.VaultTransitKey, "", 200*time.Millisecond
	done, kc := startPlugin(ctx, t, o)
	status := func() *kmsapi.StatusResponse {
		var st *kmsapi.StatusResponse
		if err := framework.Poll(ctx, 10*time.Second, "the plugin's socket", func(ctx context.Context) (bool, error) {
			var err error
			st, err = kc.Status(ctx, &kmsapi.StatusRequest{})
			return err == nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		return st
	}

	// Until the first login attempt has failed, Status says it has not
	// logged in yet; then it names the failed login.
	st := status()
	if err := framework.Poll(ctx, 10*time.Second, "Status naming the failed login", func(ctx context.Context) (bool, error) {
		st = status()
		return strings.Contains(st.Healthz, "not logged in to Vault:"), nil
	}); err != nil {
		t.Fatalf("%v (last healthz %q)", err, st.Healthz)
	}
	if st.Healthz == "ok" || !strings.Contains(st.Healthz, "approle") {
		t.Fatalf("Status with a bad secret ID: healthz %q, want unhealthy naming the failed AppRole login", st.Healthz)
	}
	if strings.Contains(st.Healthz, "not-the-secret-id") {
		t.Fatalf("Status leaks the secret ID: %q", st.Healthz)
	}
	t.Logf("Status with a bad secret ID: %s", st.Healthz)
	if _, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: []byte("seed"), Uid: "1"}); err == nil {
		t.Fatal("Encrypt succeeded without a Vault login")
	}

	if err := os.WriteFile(secretFile, []byte(secretID), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := framework.Poll(ctx, 30*time.Second, "healthy after the secret ID was fixed", func(ctx context.Context) (bool, error) {
		st, err = kc.Status(ctx, &kmsapi.StatusRequest{})
		return err == nil && st.Healthz == "ok", nil
	}); err != nil {
		t.Fatalf("%v (last healthz %q)", err, st.GetHealthz())
	}
	if st.Version != "v2" || st.KeyId != "transit/kubernetes-secrets:v1" {
		t.Errorf("Status = %+v, want v2 and key ID transit/kubernetes-secrets:v1", st)
	}
	enc, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: []byte("a DEK seed"), Uid: "2"})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := kc.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Uid: "3"})
	if err != nil || !bytes.Equal(dec.Plaintext, []byte("a DEK seed")) {
		t.Fatalf("Decrypt = %q, %v", dec.GetPlaintext(), err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after its context ended", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not stop within 15 s of its context ending")
	}
}

// TestRunWithCertAuth: `keyward kms --auth cert` logs in to a TLS Vault with
// a client certificate (no AppRole secret on the node) and serves a healthy
// Status and a working Encrypt/Decrypt over its socket.
func TestRunWithCertAuth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "kms-cert-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	v, err := framework.StartVault(ctx, framework.VaultOptions{Dir: dir, TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Stop() })
	certFile, keyFile, err := v.EnableCertAuth(ctx, dir, framework.VaultKMSRole, framework.PolicyKMS)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "vault-ca.pem")
	if err := os.WriteFile(caFile, v.TLSCAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	o.Socket, o.VaultServer, o.VaultCAFile = filepath.Join(dir, "kms.sock"), v.Addr, caFile
	o.Auth, o.ClientCertFile, o.ClientKeyFile, o.CertRole = "cert", certFile, keyFile, framework.VaultKMSRole
	o.TransitKey, o.MetricsAddr = framework.VaultTransitKey, ""
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	done, kc := startPlugin(ctx, t, o)
	var st *kmsapi.StatusResponse
	if err := framework.Poll(ctx, 30*time.Second, "healthy with cert auth", func(ctx context.Context) (bool, error) {
		st, err = kc.Status(ctx, &kmsapi.StatusRequest{})
		return err == nil && st.Healthz == "ok", nil
	}); err != nil {
		t.Fatalf("%v (last healthz %q)", err, st.GetHealthz())
	}
	enc, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: []byte("seed"), Uid: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if dec, err := kc.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Uid: "2"}); err != nil || string(dec.Plaintext) != "seed" {
		t.Fatalf("Decrypt with cert auth = %q, %v", dec.GetPlaintext(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// startPlugin runs Run(o) until ctx ends and returns its result channel and
// a KMS v2 client on its socket, as the apiserver dials it.
func startPlugin(ctx context.Context, t *testing.T, o *Options) (<-chan error, kmsapi.KeyManagementServiceClient) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, logr.Discard(), nil) }()
	conn, err := grpc.NewClient("unix://"+o.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return done, kmsapi.NewKeyManagementServiceClient(conn)
}
