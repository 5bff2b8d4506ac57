// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Encryption at rest: the kube-apiserver encrypts Secrets through `keyward
// kms`, the KMS v2 plugin on Vault Transit, run from bin/keyward as its own
// process (as the static pod runs it) before the apiserver starts.

const (
	// KMSProviderName is the provider's name in the EncryptionConfiguration;
	// every encrypted value in etcd starts with KMSPrefix.
	KMSProviderName = "keyward-vault-transit"
	// KMSPrefix starts every value the KMS v2 provider wrote to etcd.
	KMSPrefix = "k8s:enc:kms:v2:" + KMSProviderName + ":"
	// VaultTransitMount and VaultTransitKey are the Transit mount and key
	// deploy/vault/keyward-kms.hcl grants.
	VaultTransitMount = "transit"
	VaultTransitKey   = "kubernetes-secrets"
	// VaultKMSRole is the AppRole role of the plugin.
	VaultKMSRole = "keyward-kms"
	// PolicyKMS is the plugin's Vault policy.
	PolicyKMS = "keyward-kms"
)

// KMSPlugin is a running `keyward kms`.
type KMSPlugin struct {
	// Socket is the unix socket the apiserver dials.
	Socket string
	// MetricsURL is the base URL of /metrics, /livez and /readyz.
	MetricsURL string
	// LogPath is the plugin's log (appended to across restarts).
	LogPath string
	// SecretIDFile holds the AppRole secret ID; tests may overwrite it.
	SecretIDFile string
	// Args are the plugin's flags; tests may change them before Start.
	Args []string

	bin     string
	sockDir string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// StartKMS starts `bin/keyward kms` logging in to v with the keyward-kms
// AppRole, and waits until it can encrypt and decrypt (/readyz).
func StartKMS(ctx context.Context, v *Vault, dir string) (*KMSPlugin, error) {
	bin, err := KeywardBinary(ctx)
	if err != nil {
		return nil, err
	}
	roleID, secretID, err := v.AppRoleCredentials(ctx, VaultKMSRole)
	if err != nil {
		return nil, fmt.Errorf("kms approle credentials: %w", err)
	}
	// A unix socket path must stay under 108 bytes: not under the artifacts dir.
	sockDir, err := os.MkdirTemp("", "keyward-kms-")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		_ = os.RemoveAll(sockDir)
		return nil, err
	}
	k := &KMSPlugin{
		Socket:       filepath.Join(sockDir, "kms.sock"),
		MetricsURL:   "http://127.0.0.1:" + strconv.Itoa(port),
		LogPath:      filepath.Join(dir, "keyward-kms.log"),
		SecretIDFile: filepath.Join(sockDir, "secret-id"),
		bin:          bin,
		sockDir:      sockDir,
	}
	if err := os.WriteFile(k.SecretIDFile, []byte(secretID), 0o600); err != nil {
		k.Close()
		return nil, err
	}
	k.Args = []string{"kms", "--listen", k.Socket, "--vault-server", v.Addr, "--vault-timeout", "2s",
		"--auth", "approle", "--approle-role-id", roleID, "--approle-secret-id-file", k.SecretIDFile,
		"--transit-mount", VaultTransitMount, "--transit-key", VaultTransitKey,
		"--metrics-addr", "127.0.0.1:" + strconv.Itoa(port), "--max-relogin-backoff", "2s"}
	if err := k.Start(ctx); err != nil {
		k.Close()
		return nil, err
	}
	if err := k.WaitReady(ctx, 30*time.Second); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

// Start starts the plugin process (again, after Kill or Stop).
func (k *KMSPlugin) Start(ctx context.Context) error {
	logFile, err := os.OpenFile(k.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	k.cmd = exec.Command(k.bin, k.Args...)
	k.cmd.Stdout, k.cmd.Stderr = logFile, logFile
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := k.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting keyward kms: %w", err)
	}
	exited := make(chan struct{})
	k.exited = exited
	go func() { _ = k.cmd.Wait(); logFile.Close(); close(exited) }()
	return Poll(ctx, 30*time.Second, "keyward kms socket", func(context.Context) (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("keyward kms exited; see %s", k.LogPath)
		default:
		}
		_, err := os.Stat(k.Socket)
		return err == nil, nil
	})
}

// Ready reports /readyz: the plugin can encrypt and decrypt with its key.
func (k *KMSPlugin) Ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.MetricsURL+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitReady waits for /readyz.
func (k *KMSPlugin) WaitReady(ctx context.Context, limit time.Duration) error {
	return Poll(ctx, limit, "keyward kms ready (encrypt and decrypt with the Transit key)", func(ctx context.Context) (bool, error) {
		return k.Ready(ctx), nil
	})
}

// Pid is the plugin process's ID (0 when not running).
func (k *KMSPlugin) Pid() int {
	if k == nil || k.cmd == nil || k.cmd.Process == nil {
		return 0
	}
	return k.cmd.Process.Pid
}

// Kill sends SIGKILL and waits for the process to exit.
func (k *KMSPlugin) Kill() {
	if k == nil || k.cmd == nil || k.cmd.Process == nil {
		return
	}
	_ = k.cmd.Process.Kill()
	<-k.exited
}

// Stop sends SIGTERM, then SIGKILL after 10 s.
func (k *KMSPlugin) Stop() {
	if k == nil || k.cmd == nil || k.cmd.Process == nil {
		return
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(10 * time.Second):
		k.Kill()
	}
}

// Close stops the plugin for good and removes its socket directory with the
// AppRole secret ID in it (the directory is under the system's temp dir, not
// under the test's, so nothing else would remove it).
func (k *KMSPlugin) Close() {
	if k == nil {
		return
	}
	k.Stop()
	if k.sockDir != "" {
		_ = os.RemoveAll(k.sockDir)
	}
}

// ShippedKMSSocket is the socket deploy/kms names.
const ShippedKMSSocket = "/var/run/keyward-kms/kms.sock"

// writeEncryptionConfig writes the apiserver's EncryptionConfiguration: the
// shipped deploy/kms/encryption-configuration.yaml (the KMS v2 plugin first
// and only, no identity provider) with this plugin's socket.
func (k *KMSPlugin) writeEncryptionConfig(dir string) (string, error) {
	return k.WriteEncryptionConfig(dir, false)
}

// WriteEncryptionConfig writes the shipped EncryptionConfiguration with this
// plugin's socket to dir; with identity, `- identity: {}` follows the kms
// provider, as docs/kms.md's migration step has it (plaintext Secrets still
// read, every write is encrypted).
func (k *KMSPlugin) WriteEncryptionConfig(dir string, identity bool) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	shipped, err := os.ReadFile(filepath.Join(root, "deploy", "kms", "encryption-configuration.yaml"))
	if err != nil {
		return "", err
	}
	conf := strings.ReplaceAll(string(shipped), "unix://"+ShippedKMSSocket, "unix://"+k.Socket)
	if conf == string(shipped) || !strings.Contains(conf, "name: "+KMSProviderName) {
		return "", fmt.Errorf("deploy/kms/encryption-configuration.yaml no longer names socket %s and provider %s", ShippedKMSSocket, KMSProviderName)
	}
	name := "encryption-configuration.yaml"
	if identity {
		conf = strings.TrimRight(conf, "\n") + "\n      - identity: {}\n"
		name = "encryption-configuration-migration.yaml"
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(conf), 0o600)
}
