// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/go-logr/logr"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

// TestDeliveryAgent is the delivery acceptance test, on the real stack and a
// real gateway:
//   - Debian's nginx terminates TLS from the files the `keyward agent`
//     binary writes to tmpfs, reloaded by SIGHUP through its pidfile;
//   - a Go TLS server takes its certificate from the delivery library
//     (delivery.Memory's GetCertificate), fed by an in-process agent.
//
// Both run under continuous HTTPS load (a bounded Go client on loopback, a
// new TLS handshake per request). Three forced renewals must each be
// visible in a handshake on both servers within 1 s of the custody write in
// Vault, with 0 failed requests. Then the agents are cut off from Vault (a
// TCP proxy between them and Vault stops forwarding): both servers keep
// serving the last certificate while a renewal lands in Vault, and once
// Vault is reachable again the agents deliver it by themselves.
//
// APISIX and Kong cannot run here (no container runtime; neither is in
// Debian's packages): their sinks are contract-tested against their
// documented Admin APIs in delivery/apisix and delivery/kong.
func TestDeliveryAgent(t *testing.T) {
	nginx := nginxBinary(t)
	st := keyward.StartStackForTest(t, keyward.StackOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The namespace and ServiceAccount deploy/vault/setup.sh binds the
	// shipped keyward-agent role and policy to.
	const ns, sa, secret, host = "demo", "keyward-agent", "web-tls", "web.demo.example.com"

	// The Certificate, issued by Keyward's issuer into custody.
	iss := keywardClusterIssuer(st, "vault")
	if err := st.Client.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	waitKeywardIssuerReady(t, st.Client, iss)
	custodyNamespace(t, st, ns, nil)
	crt := newCertificate(ns, "web", cmmeta.IssuerReference{Group: "vault.keyward.io", Kind: "VaultClusterIssuer", Name: "vault"}, host)
	crt.Spec.SecretName = secret
	if err := st.Client.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(crt), 60*time.Second)
	waitSettled(t, st, crt)

	// The gateway's identity: a ServiceAccount that may only get/list/watch
	// this one Secret, and the shipped keyward-agent Vault role and policy.
	agentCfg := gatewayIdentity(t, st, ns, sa, secret)
	proxy := startTCPProxy(t, strings.TrimPrefix(st.Vault.Addr, "http://"))
	tokenFile := writeVaultToken(t, st, ns, sa)
	// nginx's agent: the keyward binary, as it runs in a sidecar.
	nginxDir := t.TempDir()
	agent := startFilesAgent(t, st, agentCfg, ns+"/"+secret, "http://"+proxy.Addr(), tokenFile, filepath.Join(nginxDir, "nginx.pid"))
	filesDir, healthURL, metricsURL := agent.dir, agent.healthURL, agent.metricsURL
	assertDeliveredFiles(t, filepath.Join(filesDir, ns, secret))
	nginxPort := startNginx(t, nginx, nginxDir, filepath.Join(filesDir, ns, secret))

	// The Go server: the library, in-process, through the same Vault proxy.
	mem := delivery.NewMemory()
	session, err := delivery.NewVaultSession(delivery.VaultConfig{
		Server: "http://" + proxy.Addr(), AuthMount: framework.VaultKubernetesMount, TokenFile: tokenFile,
	}, logrFor(t, st, "agent-go"))
	if err != nil {
		t.Fatal(err)
	}
	go session.Run(ctx)
	reader, err := delivery.NewVaultReader(session.Client, delivery.VaultReaderOptions{OnForbidden: session.Relogin})
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.NewForConfig(agentCfg)
	if err != nil {
		t.Fatal(err)
	}
	goAgent, err := delivery.NewAgent(delivery.AgentOptions{
		Secrets: []types.NamespacedName{{Namespace: ns, Name: secret}}, Metadata: md, Reader: reader,
		Sinks: []delivery.Sink{mem}, Logger: logrFor(t, st, "agent-go"),
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = goAgent.Run(ctx) }()
	waitFor(t, 30*time.Second, "library agent ready", func(context.Context) (bool, error) { return goAgent.Ready(), nil })
	goPort := startGoTLSServer(t, mem)

	// Least privilege, checked for real: the shipped policy reads custody
	// records of its namespace and nothing else (no metadata, no other
	// namespace); the ServiceAccount gets this Secret only.
	for _, p := range []string{
		framework.VaultCustodyMount + "/data/" + framework.VaultCustodyPrefix + "/other-namespace/web-tls",
		framework.VaultCustodyMount + "/metadata/" + framework.VaultCustodyPrefix + "/" + ns + "/" + secret,
	} {
		if _, err := session.Client().Logical().Read(p); vaultStatus(err) != http.StatusForbidden {
			t.Errorf("agent token reading %s: got %v, want 403", p, err)
		}
	}
	if kc, err := kubernetes.NewForConfig(agentCfg); err != nil {
		t.Fatal(err)
	} else if _, err := kc.CoreV1().Secrets(ns).Get(ctx, "other-tls", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("agent ServiceAccount getting another Secret: got %v, want Forbidden", err)
	}

	// Continuous load on both servers.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(st.Vault.RootCAPEM)
	loads := []*tlsLoad{
		startTLSLoad(ctx, "nginx", "127.0.0.1:"+strconv.Itoa(nginxPort), host, roots, 2),
		startTLSLoad(ctx, "go", "127.0.0.1:"+strconv.Itoa(goPort), host, roots, 2),
	}
	defer func() {
		for _, l := range loads {
			l.stop()
		}
	}()
	first := currentPlaceholder(t, st, ns, secret)
	for _, l := range loads {
		l.waitSerial(t, first.serial, 10*time.Second)
	}

	// Three renewals: each new serial must reach a handshake within 1 s of
	// the Vault write of its custody version.
	var lat []time.Duration
	prev := first
	for i := 1; i <= 3; i++ {
		next := renewAndWait(t, st, crt, prev)
		written := custodyVersionTime(t, st, ns, secret, next.version)
		for _, l := range loads {
			seen := l.waitSerial(t, next.serial, 15*time.Second)
			d := seen.Sub(written)
			lat = append(lat, d)
			t.Logf("renewal %d: %s serves serial %s (custody version %d) %v after the Vault write", i, l.name, next.serial, next.version, d.Round(time.Millisecond))
			if d > time.Second {
				t.Errorf("renewal %d: %s showed the new certificate %v after the Vault write, want within 1s", i, l.name, d)
			}
		}
		prev = next
	}
	slices.Sort(lat)
	t.Logf("rotation latency (Vault write -> first handshake with the new certificate), %d samples: min %v, median %v, max %v",
		len(lat), lat[0].Round(time.Millisecond), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	assertDeliveredFiles(t, filepath.Join(filesDir, ns, secret))
	// One observation per renewal; the first delivery (a version stored
	// before the agent started) is not a rotation and is not observed.
	if n := metricValue(t, metricsURL, "keyward_agent_delivery_latency_seconds_count"); n != 3 {
		t.Errorf("keyward_agent_delivery_latency_seconds_count = %v after 3 renewals, want 3", n)
	}
	if v := metricValue(t, metricsURL, "keyward_agent_delivered_version"); int(v) != prev.version {
		t.Errorf("keyward_agent_delivered_version = %v, want %d", v, prev.version)
	}

	// Vault unreachable from the agents: a renewal lands in Vault (the
	// webhook's own path to Vault is up), the agents cannot read it, and
	// both servers keep serving the last certificate without a failure.
	proxy.Cut()
	partitioned := time.Now()
	next := renewAndWait(t, st, crt, prev)
	// Wait until the agent wants the new version and has failed to read it
	// (its own report, not a clock); the servers must still show the last
	// certificate after that.
	waitFor(t, 30*time.Second, "agent reporting the renewed version and a vault error", func(context.Context) (bool, error) {
		s := agentStatus(t, healthURL)
		return len(s.Secrets) == 1 && s.Secrets[0].Wanted == next.version && s.Secrets[0].Errors["vault"] != "", nil
	})
	for _, l := range loads {
		if at, ok := l.firstSeen(next.serial); ok {
			t.Fatalf("%s served serial %s at %v although the agents cannot reach Vault", l.name, next.serial, at)
		}
		if l.lastSerial() != prev.serial {
			t.Errorf("%s serves %q during the partition, want the last delivered %s", l.name, l.lastSerial(), prev.serial)
		}
	}
	status := agentStatus(t, healthURL)
	if len(status.Secrets) != 1 || status.Secrets[0].Errors["vault"] == "" || status.Secrets[0].Wanted != next.version ||
		status.Secrets[0].Version != prev.version || status.Secrets[0].Serial != prev.serial || !status.Ready {
		t.Errorf("agent /status during the partition = %+v, want wanted %d, serving %d and a vault error", status.Secrets, next.version, prev.version)
	} else {
		t.Logf("agent /status during the partition: serving version %d, wants %d, vault error: %s", status.Secrets[0].Version, next.version, status.Secrets[0].Errors["vault"])
	}
	if n := metricValue(t, metricsURL, "keyward_agent_delivery_failures_total"); n < 1 {
		t.Errorf("keyward_agent_delivery_failures_total = %v during the partition, want >= 1", n)
	}
	proxy.Restore()
	restored := time.Now()
	for _, l := range loads {
		seen := l.waitSerial(t, next.serial, 60*time.Second)
		t.Logf("after the partition (%v long): %s serves serial %s %v after Vault was reachable again", restored.Sub(partitioned).Round(time.Millisecond), l.name, next.serial, seen.Sub(restored).Round(time.Millisecond))
	}

	for _, l := range loads {
		l.stop()
		ok, failed, errs := l.result()
		t.Logf("%s: %d requests, %d failed", l.name, ok+failed, failed)
		if failed > 0 {
			t.Errorf("%s: %d of %d requests failed, want 0; first errors: %v", l.name, failed, ok+failed, errs)
		}
		if ok < 100 {
			t.Errorf("%s: only %d requests succeeded: the load did not run", l.name, ok)
		}
	}
	assertDeliveredFiles(t, filepath.Join(filesDir, ns, secret))
}

// nginxBinary finds Debian's nginx (`make tools` installs nginx-light).
func nginxBinary(t *testing.T) string {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Fatal("nginx is not installed: .ci/run installs Debian's nginx-light (apt-get install nginx-light)")
		}
		nginx = "/usr/sbin/nginx"
	}
	return nginx
}

// gatewayIdentity creates the ServiceAccount, Role and RoleBinding of a
// gateway serving one Secret (as deploy/examples/agent-rbac.yaml) and the
// keyward-agent Kubernetes auth role bound to it. It returns a client
// configuration authenticated as the ServiceAccount.
func gatewayIdentity(t *testing.T, st *keyward.Stack, ns, sa, secret string) *rest.Config {
	t.Helper()
	return gatewayIdentityWithPolicy(t, st, ns, sa, secret, "keyward-agent")
}

// gatewayIdentityWithPolicy is gatewayIdentity with the Vault role's policy
// named (the role is keyward-agent on the stack's Kubernetes auth mount).
func gatewayIdentityWithPolicy(t *testing.T, st *keyward.Stack, ns, sa, secret, policy string) *rest.Config {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{secret}, Verbs: []string{"get", "list", "watch"},
		}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: sa},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}},
	}
	for _, o := range objs {
		if err := st.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The Vault role as deploy/vault/setup.sh writes it; the policy is the
	// shipped deploy/vault/keyward-agent.hcl (the framework loads every file).
	vc, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vc.Logical().WriteWithContext(ctx, "auth/"+st.VaultKubernetesMount+"/role/keyward-agent", map[string]any{
		"bound_service_account_names": []string{sa}, "bound_service_account_namespaces": []string{ns},
		"audience": framework.VaultAudience, "token_policies": []string{policy}, "token_ttl": "15m", "token_max_ttl": "15m",
	}); err != nil {
		t.Fatal(err)
	}
	// A token for the apiserver's own audiences, as a pod's default token.
	tr, err := st.Kubernetes.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(st.RESTConfig)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

// writeVaultToken writes a token of ServiceAccount ns/sa for Vault's
// audience to a file, as a projected token volume holds it.
func writeVaultToken(t *testing.T, st *keyward.Stack, ns, sa string) string {
	t.Helper()
	tok, err := st.ServiceAccountToken(context.Background(), ns, sa, framework.VaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	return tokenFile
}

// filesAgent is a running `keyward agent` delivering to files on tmpfs.
type filesAgent struct {
	dir, healthURL, metricsURL string
}

// startFilesAgent runs the keyward binary's agent as a gateway's sidecar
// does: the gateway's kubeconfig, Vault through vaultAddr with the token
// file, the files sink reloading the process in pidfile. It waits for the
// first delivery. extra flags are added last (and win).
func startFilesAgent(t *testing.T, st *keyward.Stack, cfg *rest.Config, secret, vaultAddr, tokenFile, pidfile string, extra ...string) *filesAgent {
	t.Helper()
	bin, err := keyward.BuildKeyward(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	filesDir, err := os.MkdirTemp("/dev/shm", "keyward-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filesDir) })
	healthPort, _ := framework.FreePort()
	metricsPort, _ := framework.FreePort()
	agentLog, err := os.Create(filepath.Join(st.Dir, "agent-"+strings.ReplaceAll(secret, "/", "-")+".log"))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"agent",
		"--secret", secret, "--kubeconfig", writeKubeconfigFor(t, cfg),
		"--vault-server", vaultAddr, "--vault-auth-mount", st.VaultKubernetesMount,
		"--vault-token-file", tokenFile, // --vault-role: the default, keyward-agent
		"--sink", "files", "--files-dir", filesDir, "--files-reload-pidfile", pidfile,
		"--health-addr", "127.0.0.1:" + strconv.Itoa(healthPort), "--metrics-addr", "127.0.0.1:" + strconv.Itoa(metricsPort)}, extra...)
	agentCmd := exec.Command(bin, args...)
	agentCmd.Stdout, agentCmd.Stderr = agentLog, agentLog
	agentCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agentCmd.Process.Signal(syscall.SIGTERM); _ = agentCmd.Wait(); _ = agentLog.Close() })
	a := &filesAgent{dir: filesDir, healthURL: "http://127.0.0.1:" + strconv.Itoa(healthPort), metricsURL: "http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics"}
	waitFor(t, 30*time.Second, "agent ready (first delivery to files)", func(ctx context.Context) (bool, error) {
		return httpOK(ctx, a.healthURL+"/readyz"), nil
	})
	return a
}

func writeKubeconfigFor(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		ca, _ = os.ReadFile(cfg.CAFile)
	}
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["agent"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["agent"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "agent"}
	kc.CurrentContext = "agent"
	b, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "agent.kubeconfig")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// placeholderState is what the placeholder Secret names.
type placeholderState struct {
	version int
	serial  string
}

func currentPlaceholder(t *testing.T, st *keyward.Stack, ns, name string) placeholderState {
	t.Helper()
	s := getSecret(t, st.Client, client.ObjectKey{Namespace: ns, Name: name})
	v, err := strconv.Atoi(s.Annotations[custody.AnnotationVersion])
	if err != nil || s.Annotations[custody.AnnotationSerial] == "" {
		t.Fatalf("Secret %s/%s is not a custody placeholder: %v", ns, name, s.Annotations)
	}
	if len(s.Data[corev1.TLSPrivateKeyKey]) != 0 {
		t.Fatalf("Secret %s/%s holds a private key", ns, name)
	}
	return placeholderState{version: v, serial: s.Annotations[custody.AnnotationSerial]}
}

// renewAndWait forces a renewal (as `cmctl renew` does) and waits for the
// placeholder to name a new custody version and the Certificate to settle.
func renewAndWait(t *testing.T, st *keyward.Stack, crt *cmapi.Certificate, prev placeholderState) placeholderState {
	t.Helper()
	forceRenewal(t, st, crt, "renewal forced by an e2e test")
	var next placeholderState
	waitFor(t, 30*time.Second, "renewal of "+crt.Name+" in custody", func(ctx context.Context) (bool, error) {
		s := &corev1.Secret{}
		if err := st.Client.Get(ctx, client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, s); err != nil {
			return false, err
		}
		v, _ := strconv.Atoi(s.Annotations[custody.AnnotationVersion])
		next = placeholderState{version: v, serial: s.Annotations[custody.AnnotationSerial]}
		return v > prev.version && next.serial != prev.serial, nil
	})
	waitSettled(t, st, crt)
	return currentPlaceholder(t, st, crt.Namespace, crt.Spec.SecretName)
}

// forceRenewal sets Issuing=True with reason ManuallyTriggered, as
// `cmctl renew` does.
func forceRenewal(t *testing.T, st *keyward.Stack, crt *cmapi.Certificate, msg string) {
	t.Helper()
	ctx := context.Background()
	// cert-manager may be writing the status at the same time: retry on conflict.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &cmapi.Certificate{}
		if err := st.Client.Get(ctx, client.ObjectKeyFromObject(crt), cur); err != nil {
			return err
		}
		apiutil.SetCertificateCondition(cur, cur.Generation, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue,
			"ManuallyTriggered", msg)
		return st.Client.Status().Update(ctx, cur)
	}); err != nil {
		t.Fatal(err)
	}
}

// custodyVersionTime is when Vault stored version v of the record.
func custodyVersionTime(t *testing.T, st *keyward.Stack, ns, name string, v int) time.Time {
	t.Helper()
	vc, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	md, err := vc.KVv2(framework.VaultCustodyMount).GetMetadata(context.Background(), framework.VaultCustodyPrefix+"/"+ns+"/"+name)
	if err != nil {
		t.Fatal(err)
	}
	ver, ok := md.Versions[strconv.Itoa(v)]
	if !ok {
		t.Fatalf("custody record %s/%s has no version %d", ns, name, v)
	}
	return ver.CreatedTime
}

// assertDeliveredFiles checks the files sink's layout and modes: a 0700
// directory, 0600 files reached through the ..data symlink, on tmpfs.
func assertDeliveredFiles(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, fi.Mode().Perm())
	}
	for _, f := range []string{delivery.FileCert, delivery.FileKey, delivery.FileCA} {
		p := filepath.Join(dir, f)
		target, err := os.Readlink(p)
		if err != nil || target != filepath.Join("..data", f) {
			t.Errorf("%s: want a symlink to ..data/%s, got %q (%v)", p, f, target, err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	versions := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..v") {
			versions++
		}
	}
	if versions != 1 {
		t.Errorf("%s holds %d version directories, want 1 (old keys are removed)", dir, versions)
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(dir, &sfs); err != nil || sfs.Type != 0x01021994 {
		t.Errorf("%s is not on tmpfs (type 0x%x, %v)", dir, sfs.Type, err)
	}
}

// startNginx runs Debian's nginx in the foreground, serving HTTPS with the
// delivered files, and returns its port.
func startNginx(t *testing.T, nginx, dir, tlsDir string) int {
	t.Helper()
	port, err := framework.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		if err := os.MkdirAll(filepath.Join(dir, "tmp", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  server {
    listen 127.0.0.1:%[2]d ssl;
    server_name web.demo.example.com;
    ssl_certificate %[3]s/tls.crt;
    ssl_certificate_key %[3]s/tls.key;
    location / { return 200 "ok\n"; }
  }
}
`, dir, port, tlsDir)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	out, err := os.Create(filepath.Join(dir, "nginx.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	waitFor(t, 20*time.Second, "nginx listening", func(context.Context) (bool, error) {
		if _, err := os.Stat(filepath.Join(dir, "nginx.pid")); err != nil {
			return false, nil
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	return port
}

// startGoTLSServer serves HTTPS with certificates from mem and returns its port.
func startGoTLSServer(t *testing.T, mem *delivery.Memory) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }),
		TLSConfig:         &tls.Config{GetCertificate: mem.GetCertificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// tlsLoad sends HTTPS requests from a few goroutines, each on a new
// connection (so each makes a TLS handshake), and records the first time
// each certificate serial was served and every failure.
type tlsLoad struct {
	name   string
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ok, failed atomic.Int64
	mu         sync.Mutex
	first      map[string]time.Time
	served     map[string]int64
	last       string
	errs       []string
}

func startTLSLoad(ctx context.Context, name, addr, serverName string, roots *x509.CertPool, workers int) *tlsLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &tlsLoad{name: name, cancel: cancel, first: map[string]time.Time{}, served: map[string]int64{}}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+addr+"/", nil)
				resp, err := hc.Do(req)
				now := time.Now()
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 5 {
						l.errs = append(l.errs, now.Format(time.RFC3339Nano)+": "+err.Error())
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
					serial := resp.TLS.PeerCertificates[0].SerialNumber.Text(16)
					l.mu.Lock()
					if _, seen := l.first[serial]; !seen {
						l.first[serial] = now
					}
					l.served[serial]++
					l.last = serial
					l.mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *tlsLoad) stop() { l.cancel(); l.wg.Wait() }

func (l *tlsLoad) firstSeen(serial string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.first[serial]
	return at, ok
}

func (l *tlsLoad) lastSerial() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

func (l *tlsLoad) waitSerial(t *testing.T, serial string, limit time.Duration) time.Time {
	t.Helper()
	var at time.Time
	waitFor(t, limit, l.name+" serving serial "+serial, func(context.Context) (bool, error) {
		var ok bool
		at, ok = l.firstSeen(serial)
		return ok, nil
	})
	return at
}

// waitServed waits until the load has completed n successful handshakes
// with the certificate of this serial.
func (l *tlsLoad) waitServed(t *testing.T, serial string, n int64, limit time.Duration) {
	t.Helper()
	waitFor(t, limit, fmt.Sprintf("%s serving serial %s %d times", l.name, serial, n), func(context.Context) (bool, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.served[serial] >= n, nil
	})
}

func (l *tlsLoad) result() (ok, failed int64, errs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok.Load(), l.failed.Load(), slices.Clone(l.errs)
}

// tcpProxy forwards loopback TCP to a target until Cut; while cut it
// accepts connections and holds them without forwarding (a network
// partition, so clients see timeouts, not refusals) and drops open ones.
type tcpProxy struct {
	l      net.Listener
	target string
	cut    atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target, conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.track(c, true)
			if p.cut.Load() {
				continue // held open, never answered, closed on Restore
			}
			go p.forward(c)
		}
	}()
	t.Cleanup(func() { _ = l.Close(); p.dropAll() })
	return p
}

func (p *tcpProxy) Addr() string { return p.l.Addr().String() }

func (p *tcpProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *tcpProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *tcpProxy) forward(c net.Conn) {
	defer p.track(c, false)
	defer c.Close()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.track(up, true)
	defer p.track(up, false)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// Cut starts the partition: open connections are dropped, new ones hang.
func (p *tcpProxy) Cut() { p.cut.Store(true); p.dropAll() }

// Restore ends it: held connections are closed, new ones are forwarded.
func (p *tcpProxy) Restore() { p.cut.Store(false); p.dropAll() }

func httpOK(ctx context.Context, url string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

type agentStatusDoc struct {
	Ready   bool                    `json:"ready"`
	Secrets []delivery.SecretStatus `json:"secrets"`
}

func agentStatus(t *testing.T, base string) agentStatusDoc {
	t.Helper()
	resp, err := http.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc agentStatusDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// metricValue sums every sample of a metric family in a Prometheus text page.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// logrFor is a logger writing to <stack dir>/<name>.log (leak-scanned at cleanup).
func logrFor(t *testing.T, st *keyward.Stack, name string) logr.Logger {
	t.Helper()
	log, err := st.Logger(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	return log
}
