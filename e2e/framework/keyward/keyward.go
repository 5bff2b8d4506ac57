// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package keyward runs Keyward itself (cmd/keyward/app, the same code as the
// binary) in-process against a framework.Env, with its webhooks registered in
// the apiserver. It is separate from package framework so that Keyward's own
// packages can use the framework in their integration tests without an
// import cycle.
package keyward

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/issuer"
	"github.com/keyward-io/keyward/webhook"
)

// StackOptions configure StartStack.
type StackOptions struct {
	// Framework options; Name and Dir are passed through.
	Framework framework.Options
	// WebhookConfig tweaks the webhook configuration before it is installed
	// (failure policies, timeouts).
	WebhookConfig func(*webhook.ConfigOptions)
	// Options tweaks Keyward's options before it starts.
	Options func(*app.Options)
	// NoKeyward installs the webhooks but does not start Keyward (a test
	// starts it itself, e.g. after a fault).
	NoKeyward bool
	// AdminKeyward runs Keyward with the administrator's credentials instead
	// of as its ServiceAccount under the Helm chart's RBAC (the default, so
	// every scenario also proves the chart grants enough and no more).
	AdminKeyward bool
	// PlaintextEtcd runs the apiserver without encryption at rest. By
	// default the stack is the production setup Keyward recommends: Secrets
	// encrypted by `keyward kms` (framework.Options.KMS).
	PlaintextEtcd bool
	// CustodyStores, when set, gives in-process Keyward its custody writer's
	// and guard's stores (app.Deps.CustodyStores): a cloud store on an
	// in-process fake.
	CustodyStores func(ctx context.Context) (writer, guard custody.Store, err error)
	// ChartValues are --set arguments for rendering the chart's RBAC (e.g.
	// "adoption.enabled=true"), when Keyward runs as its ServiceAccount.
	ChartValues []string
}

// Stack is the real stack plus a running Keyward.
type Stack struct {
	*framework.Env
	// Keyward is the running manager (nil with NoKeyward until Start is called).
	Keyward *Instance
	// Registry holds Keyward's metrics (a private registry per stack).
	Registry *prometheus.Registry
	// ProcessCgroup, when set, is a cgroup directory (with a cgroup.procs
	// file) that Keyward processes join before the keyward binary starts,
	// so that it runs under that cgroup's limits from its first
	// instruction, as in a container. ProcessEnv is added to their
	// environment (which never inherits GOMEMLIMIT from this process).
	ProcessCgroup string
	ProcessEnv    []string
	opts          StackOptions
	// keywardConfig is how Keyward connects: as its ServiceAccount, or as admin.
	keywardConfig *rest.Config
	// proc is the last Keyward started as a process (StartKeywardProcess),
	// binary the keyward binary it runs, procStarts how many were started.
	proc       *Process
	binary     string
	procStarts int
}

// Instance is one running Keyward manager.
type Instance struct {
	cancel context.CancelFunc
	done   chan error
}

// Stop stops the manager and waits for it.
func (i *Instance) Stop() error {
	if i == nil {
		return nil
	}
	i.cancel()
	select {
	case err := <-i.done:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("keyward did not stop within 30s")
	}
}

// StartStack starts the whole stack with Keyward's webhooks installed and,
// unless NoKeyward, Keyward running and serving them.
func StartStack(ctx context.Context, opts StackOptions) (*Stack, error) {
	cfg := webhook.ConfigOptions{
		// envtest rewrites Service references to its local webhook server.
		Service: &admissionv1.ServiceReference{Name: "keyward", Namespace: framework.KeywardNamespace},
	}
	if opts.WebhookConfig != nil {
		opts.WebhookConfig(&cfg)
	}
	fo := opts.Framework
	fo.KMS = fo.KMS || !opts.PlaintextEtcd
	fo.AddToScheme = append(fo.AddToScheme, func(s *runtime.Scheme) error { return issuer.AddToScheme(s) })
	fo.MutatingWebhooks = append(fo.MutatingWebhooks, webhook.MutatingWebhookConfiguration(cfg))
	env, err := framework.Start(ctx, fo)
	if err != nil {
		return nil, err
	}
	st := &Stack{Env: env, Registry: prometheus.NewRegistry(), opts: opts, keywardConfig: env.RESTConfig}
	if !opts.AdminKeyward {
		if st.keywardConfig, err = applyChartRBAC(ctx, env, opts.ChartValues); err != nil {
			env.Stop()
			return nil, err
		}
	}
	if !opts.NoKeyward {
		if err := st.StartKeyward(ctx); err != nil {
			env.Stop()
			return nil, err
		}
	}
	return st, nil
}

// StartStackForTest is StartStack for one test, stopped at cleanup.
func StartStackForTest(t testing.TB, opts StackOptions) *Stack {
	t.Helper()
	if opts.Framework.Name == "" {
		opts.Framework.Name = t.Name()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := StartStack(ctx, opts)
	if err != nil {
		t.Fatalf("starting stack: %v", err)
	}
	t.Cleanup(func() {
		// Every scenario ends with the leak check: no private key or token
		// in any log, Event or Certificate/CertificateRequest message.
		st.CheckLeaks(t)
		if t.Failed() {
			t.Logf("component logs: %s", st.Dir)
		}
		st.Stop()
	})
	return st
}

// Options returns the options Keyward runs with in this stack.
func (s *Stack) Options() *app.Options {
	o := app.NewOptions()
	o.LeaderElect = false
	o.MetricsBindAddress = "0"
	o.HealthProbeBindAddress = "0"
	o.WebhookHost = s.Webhook.LocalServingHost
	o.WebhookPort = s.Webhook.LocalServingPort
	o.WebhookCertDir = s.Webhook.LocalServingCertDir
	o.ClusterResourceNamespace = framework.KeywardNamespace
	o.VaultAddr = s.Vault.Addr
	o.VaultAuthMount = s.VaultKubernetesMount
	o.ServiceAccountNamespace = framework.KeywardNamespace
	o.ServiceAccountName = framework.KeywardServiceAccount
	o.CustodyMount = framework.VaultCustodyMount
	o.CustodyPrefix = framework.VaultCustodyPrefix
	o.Verbosity = 1
	if s.opts.Options != nil {
		s.opts.Options(o)
	}
	return o
}

// StartKeyward starts a Keyward manager and waits until its webhook server
// accepts connections.
func (s *Stack) StartKeyward(ctx context.Context) error {
	if s.Keyward != nil {
		return fmt.Errorf("keyward already running")
	}
	if s.proc != nil && !s.proc.Exited() {
		return fmt.Errorf("keyward already running as a process")
	}
	log, err := s.Logger("keyward", 2)
	if err != nil {
		return err
	}
	// Parts of controller-runtime (the webhook server's certificate watcher)
	// log through its global logger; point it at this stack's log too.
	ctrllog.SetLogger(log)
	// A fresh registry per start: a restarted manager registers its metrics again.
	s.Registry = prometheus.NewRegistry()
	runCtx, cancel := context.WithCancel(context.Background())
	mgr, closers, err := app.NewManager(ctx, s.keywardConfig, s.Options(), app.Deps{Logger: log, Registerer: s.Registry, SeveralManagers: true, CustodyStores: s.opts.CustodyStores})
	if err != nil {
		cancel()
		for _, c := range closers {
			c()
		}
		return fmt.Errorf("building keyward: %w", err)
	}
	inst := &Instance{cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := mgr.Start(runCtx)
		for _, c := range closers {
			c()
		}
		inst.done <- err
	}()
	s.Keyward = inst
	return waitListening(ctx, net.JoinHostPort(s.Webhook.LocalServingHost, strconv.Itoa(s.Webhook.LocalServingPort)), 30*time.Second)
}

// UseCustodyStores makes the next StartKeyward open these stores
// (StackOptions.CustodyStores): Keyward restarted on another store.
func (s *Stack) UseCustodyStores(f func(ctx context.Context) (writer, guard custody.Store, err error)) {
	s.opts.CustodyStores = f
}

// StopKeyward stops the running manager (a crash or an outage of Keyward).
func (s *Stack) StopKeyward() error {
	err := s.Keyward.Stop()
	s.Keyward = nil
	return err
}

// Stop stops Keyward (in-process or a process), then the rest of the stack.
func (s *Stack) Stop() {
	_ = s.proc.Stop()
	_ = s.Keyward.Stop()
	s.Env.Stop()
}

func waitListening(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("keyward webhook server at %s not listening after %s: %w", addr, limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
