// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Options configure Start.
type Options struct {
	// Dir receives every component's logs. Default: <root>/e2e/_artifacts/<name>-<time>.
	Dir string
	// Name labels the default Dir (StartForTest uses the test name).
	Name string
	// AddToScheme registers extra API types (Keyward's) with Env.Scheme.
	AddToScheme []func(*runtime.Scheme) error
	// MutatingWebhooks are installed into the apiserver, pointing at the local
	// webhook server described by Env.Webhook (host, port, cert dir).
	MutatingWebhooks []*admissionv1.MutatingWebhookConfiguration
	// WithoutCertManager skips cert-manager's controllers.
	WithoutCertManager bool
	// DisabledCertManagerControllers names controllers from cert-manager's
	// registry not to run, e.g. "certificaterequests-approver" for tests that
	// approve or deny requests themselves.
	DisabledCertManagerControllers []string
	// RestartableAPIServer keeps the apiserver's serving certificate, client
	// CA and ServiceAccount signing keys in a directory of the stack's own
	// (removed by Stop) instead of envtest's temporary one, which envtest
	// deletes and regenerates on every stop. With it, StopAPIServer and
	// StartAPIServer restart the apiserver in place: same port, same
	// identity, so every existing client and token stays valid.
	RestartableAPIServer bool
	// ACME starts pebble (the ACME server) and BIND (the DNS server for
	// DNS-01) before cert-manager, and points cert-manager's DNS-01
	// self-check at that BIND. Env.ACME describes them.
	ACME bool
	// ACMEShortLived is the validity of pebble's short-lived profile
	// (default 45 s).
	ACMEShortLived time.Duration
	// KMS encrypts Secrets at rest: Vault starts first, then `keyward kms`
	// (bin/keyward, the KMS v2 plugin on Vault Transit), then the apiserver
	// with an EncryptionConfiguration naming only that plugin. Env.KMS is
	// the plugin.
	KMS bool
	// GatewayAPI installs the Gateway API standard CRDs (sigs.k8s.io/gateway-api
	// v1.6, ListenerSet included) and a stand-in for APISIX's ApisixTls CRD
	// (GatewayAPICRDs), and runs cert-manager's gateway-shim and ListenerSet
	// shim (the ListenerSets feature gate on, as
	// --enable-gateway-api-listenerset does). Without it those two shims are
	// not run.
	GatewayAPI bool
	// SharedVault, when set, is a running Vault this stack uses instead of
	// starting its own (two clusters, one Vault). The stack adds its
	// Kubernetes auth at VaultKubernetesMount and does not stop it.
	SharedVault *Vault
	// VaultKubernetesMount is where this apiserver's Kubernetes auth is
	// mounted in Vault. Default VaultKubernetesMount; a second stack on a
	// SharedVault needs its own.
	VaultKubernetesMount string
}

// Env is the running stack.
type Env struct {
	// Dir holds the logs of every component and anything a test wants to keep.
	Dir string
	// RESTConfig is an administrator's connection to the apiserver.
	RESTConfig *rest.Config
	// Scheme knows Kubernetes, cert-manager and any Options.AddToScheme types.
	Scheme *runtime.Scheme
	// Client is an administrator's controller-runtime client (no cache).
	Client client.Client
	// Kubernetes is an administrator's clientset.
	Kubernetes kubernetes.Interface
	// Vault is the configured Vault dev server.
	Vault *Vault
	// VaultKubernetesMount is Options.VaultKubernetesMount, defaulted: the
	// Vault auth mount that trusts this apiserver's ServiceAccount tokens.
	VaultKubernetesMount string
	// sharedVault is set with Options.SharedVault: Stop leaves Vault running.
	sharedVault bool
	// Webhook says where the apiserver expects the webhook server (envtest
	// generates its serving certificate in LocalServingCertDir).
	Webhook *envtest.WebhookInstallOptions
	// EtcdEndpoint is etcd's client URL, for raw scans of what is at rest.
	EtcdEndpoint string
	// CertManagerControllers lists the cert-manager controllers running.
	CertManagerControllers []string
	// ACME is pebble and BIND, with Options.ACME.
	ACME *ACME
	// KMS is the apiserver's KMS v2 plugin, with Options.KMS.
	KMS *KMSPlugin
	// codec decrypts and encrypts etcd values as the apiserver does (KMS only).
	codec *etcdCodec

	kube *envtest.Environment
	cm   *certManager
	// cmDisabled is Options.DisabledCertManagerControllers, plus the Gateway
	// API shims without Options.GatewayAPI, for restarts.
	cmDisabled []string
	// gatewayAPI is Options.GatewayAPI, for restarts.
	gatewayAPI bool
	logs       []*os.File
	// apiserverCertDir is set with Options.RestartableAPIServer.
	apiserverCertDir string
}

// Start brings up etcd + kube-apiserver, Vault (with Kubernetes auth against
// this apiserver) and cert-manager's controllers. Call Stop when done.
func Start(ctx context.Context, opts Options) (env *Env, err error) {
	if opts.Dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		opts.Dir = filepath.Join(root, "e2e", "_artifacts", sanitize(opts.Name)+"-"+time.Now().Format("20060102-150405.000"))
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating artifacts dir: %w", err)
	}
	env = &Env{Dir: opts.Dir, Scheme: runtime.NewScheme(), VaultKubernetesMount: opts.VaultKubernetesMount, sharedVault: opts.SharedVault != nil}
	if env.VaultKubernetesMount == "" {
		env.VaultKubernetesMount = VaultKubernetesMount
	}
	defer func() {
		if err != nil {
			env.Stop()
		}
	}()
	utilruntime.Must(clientgoscheme.AddToScheme(env.Scheme))
	utilruntime.Must(cmapi.AddToScheme(env.Scheme))
	utilruntime.Must(cmacme.AddToScheme(env.Scheme))
	for _, add := range opts.AddToScheme {
		if err := add(env.Scheme); err != nil {
			return env, fmt.Errorf("registering API types: %w", err)
		}
	}

	if opts.RestartableAPIServer {
		if env.apiserverCertDir, err = os.MkdirTemp("", "keyward-apiserver-"); err != nil {
			return env, fmt.Errorf("creating apiserver cert dir: %w", err)
		}
	}

	// Vault and the apiserver start in parallel: each takes a few seconds.
	type vaultResult struct {
		v   *Vault
		err error
	}
	vch := make(chan vaultResult, 1)
	go func() {
		if opts.SharedVault != nil {
			vch <- vaultResult{opts.SharedVault, nil}
			return
		}
		v, err := StartVault(ctx, VaultOptions{Dir: opts.Dir})
		vch <- vaultResult{v, err}
	}()
	var encryptionConfig string
	if opts.KMS {
		// The plugin needs Vault, and the apiserver needs the plugin.
		vr := <-vch
		vch <- vr
		if vr.err != nil {
			return env, vr.err
		}
		env.Vault = vr.v
		if env.KMS, err = StartKMS(ctx, vr.v, opts.Dir); err != nil {
			return env, err
		}
		env.codec = &etcdCodec{plugin: env.KMS}
		if encryptionConfig, err = env.KMS.writeEncryptionConfig(opts.Dir); err != nil {
			return env, err
		}
	}
	var extraCRDs []string
	if opts.GatewayAPI {
		if extraCRDs, err = GatewayAPICRDs(); err != nil {
			return env, err
		}
		utilruntime.Must(gwapiv1.Install(env.Scheme))
	}
	kube, kubeErr := startKube(opts.Dir, envtest.WebhookInstallOptions{MutatingWebhooks: opts.MutatingWebhooks}, env.apiserverCertDir, encryptionConfig, extraCRDs)
	vr := <-vch
	env.kube, env.Vault = kube, vr.v
	if kubeErr != nil || vr.err != nil {
		return env, errors.Join(kubeErr, vr.err)
	}
	env.RESTConfig = kube.Config
	env.Webhook = &kube.WebhookInstallOptions
	env.EtcdEndpoint = kube.ControlPlane.Etcd.URL.String()
	if env.Client, err = client.New(env.RESTConfig, client.Options{Scheme: env.Scheme}); err != nil {
		return env, fmt.Errorf("creating client: %w", err)
	}
	if env.Kubernetes, err = kubernetes.NewForConfig(env.RESTConfig); err != nil {
		return env, fmt.Errorf("creating clientset: %w", err)
	}
	if env.codec != nil {
		if err := env.codec.prime(ctx, env); err != nil {
			return env, err
		}
	}
	reviewer, err := bootstrapAccounts(ctx, env.Kubernetes)
	if err != nil {
		return env, err
	}
	if err := env.Vault.ConfigureKubernetesAuth(ctx, env.VaultKubernetesMount, env.RESTConfig.Host, env.RESTConfig.CAData, reviewer, DefaultKubernetesAuthRoles()); err != nil {
		return env, err
	}
	if opts.ACME {
		if env.ACME, err = StartACME(ctx, opts.Dir, opts.ACMEShortLived); err != nil {
			return env, err
		}
	}
	if !opts.WithoutCertManager {
		env.cmDisabled = slices.Clone(opts.DisabledCertManagerControllers)
		if env.gatewayAPI = opts.GatewayAPI; !env.gatewayAPI {
			env.cmDisabled = append(env.cmDisabled, gatewayShims...)
		}
		if env.cm, err = startCertManager(ctx, kube, opts.Dir, env.cmDisabled, env.dns01Nameservers(), env.gatewayAPI); err != nil {
			return env, err
		}
		env.CertManagerControllers = env.cm.Controllers
	}
	return env, nil
}

// StartForTest starts the stack for one test and stops it at cleanup. Logs
// are kept under e2e/_artifacts/<test name>-<time> and named on failure.
func StartForTest(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.Name == "" {
		opts.Name = t.Name()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("starting test stack: %v", err)
	}
	t.Cleanup(func() {
		env.CheckLeaks(t)
		if t.Failed() {
			t.Logf("component logs: %s", env.Dir)
		}
		env.Stop()
	})
	return env
}

// CheckLeaks runs LeakScan and fails t for every hit. The ...ForTest
// helpers call it at cleanup, so every scenario ends with it.
func (e *Env) CheckLeaks(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := e.LeakScan(ctx)
	if err != nil {
		t.Errorf("leak check: %v", err)
	}
	for _, h := range r.Hits {
		t.Errorf("leak check: %s", h)
	}
}

// VaultForTest starts only a configured Vault dev server (no Kubernetes auth)
// and stops it at cleanup.
func VaultForTest(t testing.TB) *Vault {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, err := StartVault(ctx, VaultOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("starting vault: %v", err)
	}
	t.Cleanup(func() { _ = v.Stop() })
	return v
}

// Stop shuts everything down, cert-manager first so nothing writes to a
// stopping apiserver.
func (e *Env) Stop() {
	if e.cm != nil {
		e.cm.stop()
	}
	if e.kube != nil {
		_ = e.kube.Stop()
	}
	if e.apiserverCertDir != "" {
		_ = os.RemoveAll(e.apiserverCertDir)
	}
	if e.Vault != nil && !e.sharedVault {
		_ = e.Vault.Stop()
	}
	e.ACME.Stop()
	e.codec.close()
	e.KMS.Close()
	for _, f := range e.logs {
		_ = f.Close()
	}
}

// CertManagerErrors reports cert-manager controllers that stopped unexpectedly.
func (e *Env) CertManagerErrors() []error {
	if e.cm == nil {
		return nil
	}
	return e.cm.Errors()
}

// Logger returns a logger writing JSON lines to <Dir>/<name>.log, for
// in-process components (Keyward's manager, the demo).
func (e *Env) Logger(name string, verbosity int) (logr.Logger, error) {
	f, err := os.Create(filepath.Join(e.Dir, name+".log"))
	if err != nil {
		return logr.Discard(), err
	}
	e.logs = append(e.logs, f)
	return crzap.New(crzap.WriteTo(f), crzap.UseDevMode(false), crzap.Level(levelDebug(verbosity))), nil
}

// ServiceAccountToken returns a short-lived token (TokenRequest API) for a
// ServiceAccount with the given audience.
func (e *Env) ServiceAccountToken(ctx context.Context, namespace, name, audience string) (string, error) {
	tr, err := e.Kubernetes.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting token for %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// AdminKubeconfig returns a kubeconfig for a system:masters user of this
// apiserver, for kubectl-style inspection (make dev).
func (e *Env) AdminKubeconfig() ([]byte, error) {
	user, err := e.kube.AddUser(envtest.User{Name: "keyward-dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("creating admin user: %w", err)
	}
	return user.KubeConfig()
}

// CreateNamespace creates a namespace with labels (or labels an existing one).
func (e *Env) CreateNamespace(ctx context.Context, name string, labels map[string]string) error {
	return ensureNamespace(ctx, e.Kubernetes, name, labels)
}

func levelDebug(v int) zapcore.LevelEnabler { return zapcore.Level(-v) }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func sanitize(name string) string {
	if name == "" {
		return "stack"
	}
	return strings.Trim(unsafeName.ReplaceAllString(name, "_"), "_")
}
