// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package keyward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/e2e/framework"
)

// Process is Keyward running as its own operating-system process (the
// keyward binary, built from ./cmd/keyward), so that a test can crash it for
// real with SIGKILL: no deferred function, no graceful shutdown, no flushed
// client, exactly what an OOM kill or a node failure does to a pod.
type Process struct {
	// LogPath is the process's log (stdout and stderr, JSON lines).
	LogPath string
	// MetricsAddr, HealthAddr and PprofAddr are host:port of its metrics,
	// probe and profiling endpoints (/metrics; /healthz, /readyz;
	// /debug/pprof/), all on loopback.
	MetricsAddr, HealthAddr, PprofAddr string

	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	// waitErr is cmd.Wait's result, readable once exited is closed.
	waitErr error
}

// StartKeywardProcess builds the keyward binary into bin/keyward (go build
// skips the link when it is up to date), then starts it with the options
// StartKeyward would use in-process (Options, including StackOptions.Options),
// except that metrics, health probes and pprof listen on free loopback ports. It
// connects as Keyward's ServiceAccount through a kubeconfig written to
// <Dir>/keyward.kubeconfig (a TokenRequest token; with AdminKeyward, the
// administrator's credentials), serves the webhooks where the apiserver
// expects them, and logs to <Dir>/keyward-process-<n>.log. It returns once
// the webhook server accepts connections. Only one Keyward, in-process or
// not, may run at a time: both listen on the same webhook port.
func (s *Stack) StartKeywardProcess(ctx context.Context) (*Process, error) {
	if s.Keyward != nil {
		return nil, errors.New("keyward already running in-process")
	}
	if s.proc != nil && !s.proc.Exited() {
		return nil, errors.New("a keyward process is already running")
	}
	p, err := s.startProcess(ctx, s.Options(), s.Webhook.LocalServingPort)
	if err != nil {
		return nil, err
	}
	s.proc = p
	return p, nil
}

// startProcess starts the keyward binary with o, its webhook server on
// webhookPort, metrics and probes on free loopback ports, and waits until
// the webhook server accepts connections.
func (s *Stack) startProcess(ctx context.Context, o *app.Options, webhookPort int) (*Process, error) {
	if s.binary == "" {
		// Nothing in this process calls StartKeyward, which is where the
		// global controller-runtime logger (envtest, the harness's clients)
		// is otherwise set; without it controller-runtime prints a warning
		// with a stack trace after 30 s.
		log, err := s.Logger("harness", 1)
		if err != nil {
			return nil, err
		}
		ctrllog.SetLogger(log)
		bin, err := buildKeyward(ctx)
		if err != nil {
			return nil, err
		}
		s.binary = bin
	}
	kubeconfig := filepath.Join(s.Dir, "keyward.kubeconfig")
	if err := s.writeKubeconfig(ctx, kubeconfig); err != nil {
		return nil, err
	}
	o.WebhookPort = webhookPort
	metricsPort, err := framework.FreePort()
	if err != nil {
		return nil, err
	}
	healthPort, err := framework.FreePort()
	if err != nil {
		return nil, err
	}
	pprofPort, err := framework.FreePort()
	if err != nil {
		return nil, err
	}
	o.MetricsBindAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort))
	o.HealthProbeBindAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(healthPort))
	o.PprofBindAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(pprofPort))

	s.procStarts++
	p := &Process{
		LogPath:     filepath.Join(s.Dir, fmt.Sprintf("keyward-process-%d.log", s.procStarts)),
		MetricsAddr: o.MetricsBindAddress,
		HealthAddr:  o.HealthProbeBindAddress,
		PprofAddr:   o.PprofBindAddress,
		exited:      make(chan struct{}),
	}
	if p.log, err = os.Create(p.LogPath); err != nil {
		return nil, fmt.Errorf("creating keyward process log: %w", err)
	}
	p.cmd = exec.Command(s.binary, OptionArgs(o)...)
	if s.ProcessCgroup != "" {
		// The shell moves itself into the cgroup, then becomes keyward.
		p.cmd = exec.Command("/bin/sh", append([]string{"-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, s.ProcessCgroup, s.binary}, OptionArgs(o)...)...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Env = append(withoutEnv(os.Environ(), "KUBECONFIG", "POD_NAMESPACE", "GOMEMLIMIT"),
		"KUBECONFIG="+kubeconfig, "POD_NAMESPACE="+framework.KeywardNamespace)
	p.cmd.Env = append(p.cmd.Env, s.ProcessEnv...)
	// If the test binary dies without cleaning up, take Keyward with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.log.Close()
		return nil, fmt.Errorf("starting %s: %w", s.binary, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	addr := net.JoinHostPort(s.Webhook.LocalServingHost, strconv.Itoa(webhookPort))
	if err := p.waitListening(ctx, addr, 60*time.Second); err != nil {
		_ = p.Kill()
		return nil, err
	}
	return p, nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() error {
	if p == nil || p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing keyward (pid %d): %w", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("keyward (pid %d) still running 10s after SIGKILL", p.cmd.Process.Pid)
	}
	return p.log.Close()
}

// Stop asks the process to shut down (SIGTERM, as the kubelet does), and
// kills it if it has not exited within 30 s.
func (p *Process) Stop() error {
	if p == nil || p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.log.Close()
	case <-time.After(30 * time.Second):
		_ = p.Kill()
		return fmt.Errorf("keyward (pid %d) did not stop within 30s of SIGTERM; killed", p.cmd.Process.Pid)
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// ExitError is how the process ended (cmd.Wait's error, e.g. "signal:
// killed" after an OOM kill), or nil while it runs or after a clean exit.
func (p *Process) ExitError() error {
	if !p.Exited() {
		return nil
	}
	return p.waitErr
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

func (p *Process) waitListening(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if p.Exited() {
			return fmt.Errorf("keyward process exited during start-up (%v); see %s", p.waitErr, p.LogPath)
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("keyward process webhook server at %s not listening after %s (log %s): %w", addr, limit, p.LogPath, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// OptionArgs renders o as the keyward binary's command line: every flag,
// with o's value, so the process runs with exactly these options whatever
// the binary's defaults are.
func OptionArgs(o *app.Options) []string {
	cp := *o
	fs := pflag.NewFlagSet("keyward", pflag.ContinueOnError)
	cp.AddFlags(fs)
	var args []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" {
			return
		}
		v := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			if len(sv.GetSlice()) == 0 {
				return
			}
			v = strings.Join(sv.GetSlice(), ",")
		}
		args = append(args, "--"+f.Name+"="+v)
	})
	return args
}

// buildKeyward runs `go build -o bin/keyward ./cmd/keyward` in the
// repository, offline and without touching go.mod.
func buildKeyward(ctx context.Context) (string, error) { return framework.KeywardBinary(ctx) }

// writeKubeconfig writes how the process reaches the apiserver: as Keyward's
// ServiceAccount with a TokenRequest token (the identity StartKeyward
// impersonates), or as the administrator with AdminKeyward. The file holds a
// credential: it is written 0600 and its content is never logged.
func (s *Stack) writeKubeconfig(ctx context.Context, path string) error {
	user := &clientcmdapi.AuthInfo{}
	if s.opts.AdminKeyward {
		user.ClientCertificateData = s.RESTConfig.CertData
		user.ClientKeyData = s.RESTConfig.KeyData
		user.Token = s.RESTConfig.BearerToken
	} else {
		tr, err := s.Kubernetes.CoreV1().ServiceAccounts(framework.KeywardNamespace).CreateToken(ctx, framework.KeywardServiceAccount,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](2 * 3600)}},
			metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("requesting a token for %s/%s: %w", framework.KeywardNamespace, framework.KeywardServiceAccount, err)
		}
		user.Token = tr.Status.Token
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: s.RESTConfig.Host, CertificateAuthorityData: caData(s.RESTConfig)}
	cfg.AuthInfos["keyward"] = user
	cfg.Contexts["keyward"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "keyward"}
	cfg.CurrentContext = "keyward"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encoding keyward kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("writing keyward kubeconfig: %w", err)
	}
	return nil
}

func caData(cfg *rest.Config) []byte {
	if len(cfg.CAData) > 0 {
		return cfg.CAData
	}
	b, _ := os.ReadFile(cfg.CAFile)
	return b
}

func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// BuildKeyward builds bin/keyward (skipping the link when it is up to date)
// and returns its path, for tests that run other modes of the binary
// (keyward agent).
func BuildKeyward(ctx context.Context) (string, error) { return buildKeyward(ctx) }
