// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// Restarting the apiserver in place.
//
// envtest can stop and start its kube-apiserver (ControlPlane.APIServer.Stop
// and Start) against the same etcd, but by default Stop deletes the
// temporary directory holding the serving certificate, the client CA and the
// ServiceAccount signing keys, and Start generates new ones: every existing
// client would then distrust the server and every ServiceAccount token (and
// Vault's reviewer token) would be rejected. Options.RestartableAPIServer
// gives the apiserver a directory of its own, so a restart keeps its port and
// identity, like a kube-apiserver pod restarting on a real control plane.

// apiserverGrace is how long StopAPIServer lets the apiserver shut down on
// SIGTERM before it kills it. kube-apiserver's graceful shutdown waits for
// open long-running requests (every informer's watch) and regularly outlasts
// envtest's 20 s stop timeout; a restart in a real control plane is often no
// more graceful than this.
const apiserverGrace = 3 * time.Second

// StopAPIServer stops the kube-apiserver: SIGTERM, then SIGKILL after
// apiserverGrace, and waits for it to exit. etcd keeps running. Every
// client's watches and connections break.
func (e *Env) StopAPIServer() error {
	if e.apiserverCertDir == "" {
		return errors.New("stopping the apiserver: the stack was not started with Options.RestartableAPIServer")
	}
	pid, err := e.apiserverPID()
	if err != nil {
		return err
	}
	// envtest started it in a process group of its own.
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	if !waitGone(pid, apiserverGrace) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		if !waitGone(pid, 10*time.Second) {
			return fmt.Errorf("stopping the apiserver: process %d still there after SIGKILL", pid)
		}
	}
	// envtest reaped the process; Stop now only updates its bookkeeping (the
	// directory is ours, so nothing is deleted). Its waiter marks the process
	// exited just after reaping it: until then Stop fails to signal it.
	var stopErr error
	for range 50 {
		if stopErr = e.kube.ControlPlane.APIServer.Stop(); stopErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("stopping the apiserver: %w", stopErr)
}

// apiserverPID finds this stack's kube-apiserver among this process's
// children by its --cert-dir, which is unique to the stack.
func (e *Env) apiserverPID() (int, error) {
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return 0, err
	}
	want := "--cert-dir=" + e.apiserverCertDir
	for _, p := range procs {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "kube-apiserver" {
			continue
		}
		for i, a := range args {
			if a == want || (a == "--cert-dir" && i+1 < len(args) && args[i+1] == e.apiserverCertDir) {
				return strconv.Atoi(filepath.Base(filepath.Dir(p)))
			}
		}
	}
	return 0, fmt.Errorf("stopping the apiserver: no kube-apiserver process with %s", want)
}

// waitGone waits until process pid no longer exists (exited and reaped).
func waitGone(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// StartAPIServer starts the kube-apiserver stopped by StopAPIServer with the
// same flags, port, certificates and keys, and waits until /readyz answers
// ok. envtest itself waits only for /healthz, which answers before the RBAC
// authorizer has loaded its roles: until then every non-admin request is
// forbidden. A real control plane sends traffic to an apiserver only once
// /readyz is ok.
func (e *Env) StartAPIServer() error {
	if e.apiserverCertDir == "" {
		return errors.New("starting the apiserver: the stack was not started with Options.RestartableAPIServer")
	}
	if err := e.kube.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("starting the apiserver again (log in %s): %w", e.Dir, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		body, err := e.Kubernetes.CoreV1().RESTClient().Get().AbsPath("/readyz").Do(ctx).Raw()
		cancel()
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("apiserver not ready 30s after a restart (log in %s): %v", e.Dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SetAPIServerFlag sets a kube-apiserver flag for its next start
// (StartAPIServer), e.g. a new --encryption-provider-config.
func (e *Env) SetAPIServerFlag(name, value string) {
	e.kube.ControlPlane.APIServer.Configure().Set(name, value)
}

// PutSecretInEtcd stores a Secret straight into etcd, encoded as the
// apiserver stores it (protobuf, core/v1, encrypted through the KMS plugin
// when the stack encrypts Secrets at rest), bypassing the apiserver and its
// admission chain. It stands for a
// write the apiserver made while nobody was watching (e.g. restored from a
// backup while the apiserver was down). The Secret must name its namespace,
// name, UID and creation time; it must not exist yet. It returns the etcd
// revision of the write.
func (e *Env) PutSecretInEtcd(ctx context.Context, s *corev1.Secret) (int64, error) {
	if s.Namespace == "" || s.Name == "" || s.UID == "" || s.CreationTimestamp.IsZero() {
		return 0, errors.New("putting secret in etcd: namespace, name, uid and creationTimestamp are required")
	}
	obj := s.DeepCopy()
	obj.ResourceVersion = "" // etcd's mod revision is the resourceVersion
	obj.APIVersion, obj.Kind = "v1", "Secret"
	codec := clientgoscheme.Codecs.EncoderForVersion(protobuf.NewSerializer(clientgoscheme.Scheme, clientgoscheme.Scheme), corev1.SchemeGroupVersion)
	raw, err := runtime.Encode(codec, obj)
	if err != nil {
		return 0, fmt.Errorf("encoding secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.EtcdEndpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("connecting to etcd %s: %w", e.EtcdEndpoint, err)
	}
	defer cli.Close()
	key := "/registry/secrets/" + s.Namespace + "/" + s.Name
	// Encrypted as the apiserver would, when it encrypts Secrets at rest.
	if raw, err = e.codec.encode(ctx, key, raw); err != nil {
		return 0, err
	}
	// Create only: the same guard the apiserver uses for a create.
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(raw))).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("writing %s to etcd: %w", key, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("writing %s to etcd: it already exists", key)
	}
	return resp.Header.Revision, nil
}

// EtcdRevision returns etcd's current revision: a point in the history that
// EtcdHistory's revisions can be compared with.
func (e *Env) EtcdRevision(ctx context.Context) (int64, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.EtcdEndpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("connecting to etcd %s: %w", e.EtcdEndpoint, err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("reading etcd revision: %w", err)
	}
	return resp.Header.Revision, nil
}

// OpenWatches returns how many WATCH requests on a core/v1 resource (e.g.
// "secrets") the apiserver is serving right now, from its
// apiserver_longrunning_requests gauge. It counts every client's watches,
// the apiserver's own loopback clients included.
func (e *Env) OpenWatches(ctx context.Context, resource string) (int, error) {
	body, err := e.Kubernetes.CoreV1().RESTClient().Get().AbsPath("/metrics").Do(ctx).Raw()
	if err != nil {
		return 0, fmt.Errorf("reading apiserver metrics: %w", err)
	}
	total := 0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_longrunning_requests{") ||
			!strings.Contains(line, `group=""`) ||
			!strings.Contains(line, `resource="`+resource+`"`) ||
			!strings.Contains(line, `verb="WATCH"`) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("parsing apiserver metric line %q: %w", line, err)
		}
		total += int(v)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading apiserver metrics: %w", err)
	}
	return total, nil
}
