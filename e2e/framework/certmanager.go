// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"

	cmcontroller "github.com/cert-manager/cert-manager/pkg/controller"
	cmfeature "github.com/cert-manager/cert-manager/pkg/util/feature"

	// cert-manager's controllers register themselves with cmcontroller.Known()
	// in their init(): importing a package is what makes it run here.
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	gatewayshim "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/gateways"
	listenersetshim "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/listenerset"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/acme"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/vault"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/vault"
)

// gatewayShims are cert-manager's controllers that need the Gateway API
// CRDs (Options.GatewayAPI).
var gatewayShims = []string{gatewayshim.ControllerName, listenersetshim.ControllerName}

// certManager runs cert-manager's controllers in this process.
type certManager struct {
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	logFile     *os.File
	Controllers []string
	mu          sync.Mutex
	errs        []error
}

// startCertManager runs every registered cert-manager controller against the
// apiserver, as cert-manager's own controller binary does, with a
// system:masters identity (cert-manager's webhook, which would check approver
// RBAC, is not part of the in-process stack). Logs go to dir/cert-manager.log
// (appended to on a restart). dns01 are the only nameservers the DNS-01
// self-check asks (none: the machine's resolver, cert-manager's default).
func startCertManager(ctx context.Context, env *envtest.Environment, dir string, disabled, dns01 []string, gatewayAPI bool) (*certManager, error) {
	user, err := env.AddUser(envtest.User{Name: "cert-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("creating cert-manager's apiserver identity: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("building cert-manager kubeconfig: %w", err)
	}
	kubeconfigPath := filepath.Join(dir, "cert-manager.kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "cert-manager.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	log := crzap.New(crzap.WriteTo(logFile), crzap.UseDevMode(false), crzap.Level(levelDebug(2)))
	// The controllers outlive the start-up context (which bounds only start-up).
	runCtx, cancel := context.WithCancel(logr.NewContext(context.WithoutCancel(ctx), log))
	cm := &certManager{cancel: cancel, logFile: logFile}

	opts := cmcontroller.ContextOptions{
		Kubeconfig:         kubeconfigPath,
		KubernetesAPIQPS:   200,
		KubernetesAPIBurst: 400,
		IssuerOptions: cmcontroller.IssuerOptions{
			ClusterResourceNamespace: CertManagerNamespace,
		},
		// cert-manager's default (--max-concurrent-challenges=60); 0 would
		// schedule no ACME challenge at all.
		SchedulerOptions: cmcontroller.SchedulerOptions{MaxConcurrentChallenges: 60},
		ACMEOptions: cmcontroller.ACMEOptions{
			// --dns01-recursive-nameservers-only with the stack's BIND.
			DNS01Nameservers:        dns01,
			DNS01CheckAuthoritative: len(dns01) == 0,
			DNS01CheckRetryPeriod:   DNS01CheckRetryPeriod,
		},
		// --enable-gateway-api and --enable-gateway-api-listenerset.
		ConfigOptions: cmcontroller.ConfigOptions{EnableGatewayAPI: gatewayAPI, EnableGatewayAPIListenerSet: gatewayAPI},
		CertificateOptions: cmcontroller.CertificateOptions{
			// cert-manager's defaults (1h, 32h): a failed request is retried
			// after an hour. Tests keep the default so a re-issue loop cannot
			// hide behind a short backoff.
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	}
	if gatewayAPI {
		// --feature-gates=ListenerSets=true (alpha in v1.21). Process-wide,
		// and read only where EnableGatewayAPIListenerSet is set.
		if err := cmfeature.DefaultMutableFeatureGate.Set("ListenerSets=true"); err != nil {
			cancel()
			return nil, fmt.Errorf("enabling cert-manager's ListenerSets feature gate: %w", err)
		}
	}
	factory, err := cmcontroller.NewContextFactory(runCtx, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("building cert-manager controller context: %w", err)
	}
	names := make([]string, 0, len(cmcontroller.Known()))
	for name := range cmcontroller.Known() {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if slices.Contains(disabled, name) {
			continue
		}
		iface, err := cmcontroller.Known()[name](factory)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("constructing cert-manager controller %s: %w", name, err)
		}
		cm.Controllers = append(cm.Controllers, name)
		cm.wg.Add(1)
		go func() {
			defer cm.wg.Done()
			if err := iface.Run(5, runCtx); err != nil && runCtx.Err() == nil {
				cm.mu.Lock()
				cm.errs = append(cm.errs, fmt.Errorf("cert-manager controller %s: %w", name, err))
				cm.mu.Unlock()
				log.Error(err, "controller exited", "controller", name)
			}
		}()
	}
	// The controllers registered their informers on the shared factories;
	// start them now, as cert-manager's binary does after construction.
	shared, err := factory.Build("informers")
	if err != nil {
		cancel()
		return nil, err
	}
	shared.KubeSharedInformerFactory.Start(runCtx.Done())
	shared.SharedInformerFactory.Start(runCtx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(runCtx.Done())
	if shared.GatewaySolverEnabled {
		shared.GWShared.Start(runCtx.Done())
	}
	return cm, nil
}

func (cm *certManager) stop() {
	cm.cancel()
	done := make(chan struct{})
	go func() { cm.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
	}
	_ = cm.logFile.Sync()
	_ = cm.logFile.Close()
}

// RestartCertManager stops cert-manager's controllers and starts them again
// (a restart of the cert-manager pod): every informer re-lists, every
// Certificate, request and Order is reconciled again from scratch.
func (e *Env) RestartCertManager(ctx context.Context) error {
	if e.cm == nil {
		return errors.New("restarting cert-manager: not running")
	}
	e.cm.stop()
	cm, err := startCertManager(ctx, e.kube, e.Dir, e.cmDisabled, e.dns01Nameservers(), e.gatewayAPI)
	if err != nil {
		e.cm = nil
		return err
	}
	e.cm = cm
	return nil
}

func (e *Env) dns01Nameservers() []string {
	if e.ACME == nil {
		return nil
	}
	return []string{e.ACME.DNS.Addr}
}

// Errors returns controllers that stopped on their own (none should).
func (cm *certManager) Errors() []error {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return append([]error(nil), cm.errs...)
}
