// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/listeners"
)

// TestGatewayAPI is the Gateway API story under custody, on the real
// apiserver with the Gateway API v1.6 CRDs and cert-manager's gateway-shim
// and ListenerSet shim in-process.
//
// Envoy itself cannot run here (no container runtime, no Debian package): the
// SDS tests drive `keyward sds` (bin/keyward, as its sidecar runs) with
// go-control-plane's gRPC SDS client over the unix socket, as Envoy would
// connect, and complete a TLS handshake with what it serves. Envoy Gateway's
// translation of an SDS Secret (type gateway.envoyproxy.io/sds) into an SDS
// config source is its own code and is not exercised.
func TestGatewayAPI(t *testing.T) {
	t.Parallel()
	s := startGatewaySuite(t)
	t.Run("gateway-shim issues into custody as SDS references", s.issuance)
	t.Run("ignore-tls-listeners and ListenerSets", s.shimRules)
	t.Run("keyward sds serves referenced names only", s.sdsServes)
	t.Run("a forced renewal is pushed", s.sdsRenewal)
	t.Run("the last key is served while Vault is stopped", s.sdsVaultDown)
	t.Run("unservable references are reported", s.unservable)
	t.Run("examples", s.examples)
	assertNoKeyAtRest(t, s.st, gwNamespace, false)
}

const (
	gwNamespace = "demo" // the shipped keyward-agent Vault policy reads custody/data/tls/demo/*
	gwSDSURL    = "unix:///var/run/keyward/sds.sock"
)

type gatewaySuite struct {
	// parent is TestGatewayAPI's t: what outlives one subtest registers its
	// cleanup there.
	parent  *testing.T
	st      *keyward.Stack
	issuer  map[string]string // the cert-manager annotations that select the Vault issuer
	sds     *sdsSidecar
	webHost string
}

func startGatewaySuite(t *testing.T) *gatewaySuite {
	t.Helper()
	st := keyward.StartStackForTest(t, keyward.StackOptions{Framework: framework.Options{GatewayAPI: true}})
	ctx := context.Background()
	iss := keywardClusterIssuer(st, "vault")
	if err := st.Client.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	custodyNamespace(t, st, gwNamespace, nil)
	for _, gc := range []*gwapiv1.GatewayClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "eg", Annotations: map[string]string{custody.GatewayClassAnnotationSDSURL: gwSDSURL}},
			Spec: gwapiv1.GatewayClassSpec{ControllerName: "gateway.envoyproxy.io/gatewayclass-controller"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Spec: gwapiv1.GatewayClassSpec{ControllerName: "example.com/other-gateway"}},
	} {
		if err := st.Client.Create(ctx, gc); err != nil {
			t.Fatal(err)
		}
	}
	return &gatewaySuite{parent: t, st: st, webHost: "web.gw.example.com", issuer: map[string]string{
		"cert-manager.io/issuer": iss.Name, "cert-manager.io/issuer-kind": "VaultClusterIssuer", "cert-manager.io/issuer-group": "vault.keyward.io",
	}}
}

// gatewayWith builds a Gateway with one HTTPS listener per secret (listener
// name = secret name, hostname <secret>.gw.example) and annotations.
func (s *gatewaySuite) gatewayWith(name, class string, ann map[string]string, secrets ...string) *gwapiv1.Gateway {
	all := map[string]string{}
	for k, v := range s.issuer {
		all[k] = v
	}
	for k, v := range ann {
		all[k] = v
	}
	gw := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: gwNamespace, Name: name, Annotations: all},
		Spec: gwapiv1.GatewaySpec{GatewayClassName: gwapiv1.ObjectName(class)}}
	for _, sec := range secrets {
		host := gwapiv1.Hostname(strings.TrimSuffix(sec, "-tls") + ".gw.example.com")
		gw.Spec.Listeners = append(gw.Spec.Listeners, gwapiv1.Listener{
			Name: gwapiv1.SectionName(sec), Hostname: &host, Port: 443, Protocol: gwapiv1.HTTPSProtocolType,
			TLS: &gwapiv1.ListenerTLSConfig{CertificateRefs: []gwapiv1.SecretObjectReference{{Name: gwapiv1.ObjectName(sec)}}},
		})
	}
	return gw
}

// waitShimCertificate waits for the Certificate the shim creates for a
// listener and for it to be Ready.
func (s *gatewaySuite) waitShimCertificate(t *testing.T, name string) *cmapi.Certificate {
	t.Helper()
	waitFor(t, 30*time.Second, "gateway-shim Certificate "+name, func(ctx context.Context) (bool, error) {
		err := s.st.Client.Get(ctx, client.ObjectKey{Namespace: gwNamespace, Name: name}, &cmapi.Certificate{})
		return err == nil, client.IgnoreNotFound(err)
	})
	return waitCertificateReady(t, s.st.Client, client.ObjectKey{Namespace: gwNamespace, Name: name}, 60*time.Second)
}

// issuance: an annotated Gateway of the marked class gets one Certificate
// per listener, named after the certificateRef, issued into custody; the
// Secret is an SDS reference with no key, and cert-manager keeps the type
// across a renewal.
func (s *gatewaySuite) issuance(t *testing.T) {
	ctx := context.Background()
	if err := s.st.Client.Create(ctx, s.gatewayWith("web", "eg", nil, "web-tls")); err != nil {
		t.Fatal(err)
	}
	crt := s.waitShimCertificate(t, "web-tls")
	if crt.Spec.SecretName != "web-tls" || len(crt.Spec.DNSNames) != 1 || crt.Spec.DNSNames[0] != s.webHost {
		t.Fatalf("shim Certificate: secretName %q, dnsNames %v; want web-tls and %s", crt.Spec.SecretName, crt.Spec.DNSNames, s.webHost)
	}
	owner := metav1.GetControllerOf(crt)
	if owner == nil || owner.Kind != "Gateway" || owner.Name != "web" {
		t.Errorf("Certificate web-tls is not controlled by Gateway web: %v", owner)
	}
	assertSDSPlaceholder(t, s.st, "web-tls")
	assertScrubbed(t, s.st, gwNamespace, "web-tls", false)
	assertQuiet(t, s.st, crt, 15*time.Second)
	prev := currentPlaceholder(t, s.st, gwNamespace, "web-tls")
	next := renewAndWait(t, s.st, crt, prev)
	t.Logf("renewal: custody version %d → %d, serial %s → %s", prev.version, next.version, prev.serial, next.serial)
	assertSDSPlaceholder(t, s.st, "web-tls")
}

// assertSDSPlaceholder: the Secret is an SDS reference to keyward sds, with
// the certificate kept and the key only in custody.
func assertSDSPlaceholder(t *testing.T, st *keyward.Stack, name string) {
	t.Helper()
	sec := getSecret(t, st.Client, client.ObjectKey{Namespace: gwNamespace, Name: name})
	if sec.Type != custody.SecretTypeSDS {
		t.Fatalf("Secret %s has type %q, want %q (cert-manager must keep the type)", name, sec.Type, custody.SecretTypeSDS)
	}
	if u, n := string(sec.Data[custody.SDSDataURL]), string(sec.Data[custody.SDSDataSecretName]); u != gwSDSURL || n != gwNamespace+"/"+name {
		t.Errorf("SDS reference url=%q secretName=%q, want %q and %s/%s", u, n, gwSDSURL, gwNamespace, name)
	}
	if !isPlaceholder(sec) || len(sec.Data[corev1.TLSPrivateKeyKey]) != 0 || len(sec.Data[corev1.TLSCertKey]) == 0 {
		t.Errorf("Secret %s is not a custody placeholder with its certificate: labels %v, tls.key %d bytes, tls.crt %d bytes",
			name, sec.Labels, len(sec.Data[corev1.TLSPrivateKeyKey]), len(sec.Data[corev1.TLSCertKey]))
	}
}

// shimRules: cert-manager.io/ignore-tls-listeners skips a listener; a
// ListenerSet attached to the Gateway gets its Certificate, inheriting the
// Gateway's issuer annotations, and (its parent's class being marked) an
// SDS reference.
func (s *gatewaySuite) shimRules(t *testing.T) {
	ctx := context.Background()
	gw := s.gatewayWith("edge", "eg", map[string]string{cmapi.CertificateIgnoreTLSListeners: "skipped-tls"}, "edge-tls", "skipped-tls")
	gw.Spec.AllowedListeners = &gwapiv1.AllowedListeners{Namespaces: &gwapiv1.ListenerNamespaces{From: ptrTo(gwapiv1.NamespacesFromSame)}}
	if err := s.st.Client.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	host := gwapiv1.Hostname("api.gw.example.com")
	ls := &gwapiv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Namespace: gwNamespace, Name: "extra"}, Spec: gwapiv1.ListenerSetSpec{
		ParentRef: gwapiv1.ParentGatewayReference{Name: "edge"},
		Listeners: []gwapiv1.ListenerEntry{{Name: "api", Hostname: &host, Port: 443, Protocol: gwapiv1.HTTPSProtocolType,
			TLS: &gwapiv1.ListenerTLSConfig{CertificateRefs: []gwapiv1.SecretObjectReference{{Name: "api-tls"}}}}},
	}}
	if err := s.st.Client.Create(ctx, ls); err != nil {
		t.Fatal(err)
	}
	s.waitShimCertificate(t, "edge-tls")
	api := s.waitShimCertificate(t, "api-tls")
	if owner := metav1.GetControllerOf(api); owner == nil || owner.Kind != "ListenerSet" || owner.Name != "extra" {
		t.Errorf("Certificate api-tls is not controlled by ListenerSet extra: %v", owner)
	}
	assertSDSPlaceholder(t, s.st, "edge-tls")
	assertSDSPlaceholder(t, s.st, "api-tls")
	// The shim handled this Gateway (edge-tls exists) and skipped the
	// ignored listener: no Certificate and no Secret for it.
	err := s.st.Client.Get(ctx, client.ObjectKey{Namespace: gwNamespace, Name: "skipped-tls"}, &cmapi.Certificate{})
	if err == nil || client.IgnoreNotFound(err) != nil {
		t.Errorf("ignored listener skipped-tls: Certificate lookup = %v, want NotFound", err)
	}
}

// sdsSidecar is a running `keyward sds`.
type sdsSidecar struct {
	socket, metricsURL, healthURL string
	cmd                           *exec.Cmd
}

// startSDS runs `keyward sds` as the gateway proxy's sidecar would: its
// ServiceAccount's kubeconfig (RBAC as deploy/examples/gateway-sds.yaml
// grants), the keyward-agent Vault role, serving the Gateways of class eg.
// It runs until TestGatewayAPI ends.
func (s *gatewaySuite) startSDS(t *testing.T) *sdsSidecar {
	t.Helper()
	ctx := context.Background()
	cfg := gatewayIdentity(t, s.st, gwNamespace, "keyward-sds", "web-tls")
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{gwapiv1.GroupName}, Resources: []string{"gateways", "listenersets"}, Verbs: []string{"get", "list", "watch"}},
	}
	if err := s.st.Client.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "keyward-sds"}, Rules: rules}); err != nil {
		t.Fatal(err)
	}
	if err := s.st.Client.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "keyward-sds"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "keyward-sds"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "keyward-sds", Namespace: gwNamespace}}}); err != nil {
		t.Fatal(err)
	}
	tokenFile := writeVaultToken(s.parent, s.st, gwNamespace, "keyward-sds")
	bin, err := keyward.BuildKeyward(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "keyward-sds-")
	if err != nil {
		t.Fatal(err)
	}
	s.parent.Cleanup(func() { _ = os.RemoveAll(dir) })
	healthPort, _ := framework.FreePort()
	metricsPort, _ := framework.FreePort()
	sc := &sdsSidecar{socket: filepath.Join(dir, "sds.sock"),
		healthURL: "http://127.0.0.1:" + strconv.Itoa(healthPort), metricsURL: "http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics"}
	logFile, err := os.Create(filepath.Join(s.st.Dir, "keyward-sds.log"))
	if err != nil {
		t.Fatal(err)
	}
	sc.cmd = exec.Command(bin, "sds", "--socket", sc.socket, "--gateway-class", "eg",
		"--kubeconfig", writeKubeconfigFor(s.parent, cfg), "--vault-server", s.st.Vault.Addr,
		"--vault-auth-mount", framework.VaultKubernetesMount, "--vault-token-file", tokenFile,
		"--health-addr", "127.0.0.1:"+strconv.Itoa(healthPort), "--metrics-addr", "127.0.0.1:"+strconv.Itoa(metricsPort), "-v", "1")
	sc.cmd.Stdout, sc.cmd.Stderr = logFile, logFile
	sc.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := sc.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.parent.Cleanup(func() { _ = sc.cmd.Process.Signal(syscall.SIGTERM); _ = sc.cmd.Wait(); _ = logFile.Close() })
	waitFor(t, 30*time.Second, "keyward sds ready (every referenced Secret delivered)", func(ctx context.Context) (bool, error) {
		return httpOK(ctx, sc.healthURL+"/readyz"), nil
	})
	return sc
}

// sdsServes: a client asking for a referenced and an unreferenced name gets
// only the referenced one, a pair that completes a TLS handshake.
func (s *gatewaySuite) sdsServes(t *testing.T) {
	s.sds = s.startSDS(t)
	c := dialSDS(t, s.sds.socket)
	unservedBefore := metricValue(t, s.sds.metricsURL, "keyward_sds_unserved_requests_total")
	names := []string{gwNamespace + "/web-tls", gwNamespace + "/not-referenced-tls", "other/web-tls"}
	got := c.request(t, names, "", "", 10*time.Second)
	if len(got.secrets) != 1 || got.secrets[0].name != gwNamespace+"/web-tls" {
		t.Fatalf("SDS answered %v for %v, want only %s/web-tls", got.names(), names, gwNamespace)
	}
	waitFor(t, 10*time.Second, "unserved names counted", func(context.Context) (bool, error) {
		return metricValue(t, s.sds.metricsURL, "keyward_sds_unserved_requests_total") >= unservedBefore+2, nil
	})
	ph := currentPlaceholder(t, s.st, gwNamespace, "web-tls")
	if serial := handshake(t, got.secrets[0], s.st.Vault.RootCAPEM, s.webHost); serial != ph.serial {
		t.Errorf("SDS served serial %s, the placeholder names %s", serial, ph.serial)
	}
	// Istio's classic Gateway asks for credentialName sds://<namespace>/<name>.
	istio := dialSDS(t, s.sds.socket).request(t, []string{"sds://" + gwNamespace + "/api-tls"}, "", "", 10*time.Second)
	if len(istio.secrets) != 1 || istio.secrets[0].name != "sds://"+gwNamespace+"/api-tls" {
		t.Errorf("the sds:// form: got %v", istio.names())
	}
	c.close()
}

// sdsRenewal: an open stream gets the renewed pair pushed.
func (s *gatewaySuite) sdsRenewal(t *testing.T) {
	c := dialSDS(t, s.sds.socket)
	defer c.close()
	first := c.request(t, []string{gwNamespace + "/web-tls"}, "", "", 10*time.Second)
	crt := &cmapi.Certificate{}
	if err := s.st.Client.Get(context.Background(), client.ObjectKey{Namespace: gwNamespace, Name: "web-tls"}, crt); err != nil {
		t.Fatal(err)
	}
	prev := currentPlaceholder(t, s.st, gwNamespace, "web-tls")
	c.ack(t, first, []string{gwNamespace + "/web-tls"})
	forceRenewal(t, s.st, crt, "renewal forced by the SDS e2e test")
	pushed := c.next(t, 60*time.Second)
	at := time.Now()
	next := currentPlaceholder(t, s.st, gwNamespace, "web-tls")
	if next.version == prev.version {
		// The push came before the placeholder was re-read; wait for it to settle.
		waitSettled(t, s.st, crt)
		next = currentPlaceholder(t, s.st, gwNamespace, "web-tls")
	}
	if len(pushed.secrets) != 1 || pushed.version == first.version {
		t.Fatalf("push after renewal: %v version %q (before %q)", pushed.names(), pushed.version, first.version)
	}
	serial := handshake(t, pushed.secrets[0], s.st.Vault.RootCAPEM, s.webHost)
	if serial == prev.serial || serial != next.serial {
		t.Fatalf("pushed serial %s; before %s, custody now %s", serial, prev.serial, next.serial)
	}
	lat := at.Sub(custodyVersionTime(t, s.st, gwNamespace, "web-tls", next.version))
	t.Logf("renewed pair (serial %s, custody version %d) pushed %v after its custody write", serial, next.version, lat.Round(time.Millisecond))
	if lat > time.Second {
		t.Errorf("the renewed pair reached the SDS client %v after its custody write, want within 1 s", lat)
	}
	waitSettled(t, s.st, crt)
}

// sdsVaultDown: with Vault stopped, a new stream still gets the last key.
func (s *gatewaySuite) sdsVaultDown(t *testing.T) {
	ph := currentPlaceholder(t, s.st, gwNamespace, "web-tls")
	if err := s.st.Vault.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.st.Vault.Resume(); err != nil {
			t.Fatal(err)
		}
	}()
	got := dialSDS(t, s.sds.socket).request(t, []string{gwNamespace + "/web-tls"}, "", "", 10*time.Second)
	if len(got.secrets) != 1 {
		t.Fatalf("with Vault stopped: %v", got.names())
	}
	if serial := handshake(t, got.secrets[0], s.st.Vault.RootCAPEM, s.webHost); serial != ph.serial {
		t.Errorf("with Vault stopped, served serial %s, want the last one %s", serial, ph.serial)
	}
}

// unservable: a Gateway of an unmarked class, an Ingress and an ApisixTls
// referencing a custody placeholder each get a CustodyKeyUnservable event,
// so does the Certificate, and keyward_tls_references counts them; an
// acknowledged Ingress gets none.
func (s *gatewaySuite) unservable(t *testing.T) {
	ctx := context.Background()
	if err := s.st.Client.Create(ctx, s.gatewayWith("legacy", "plain", nil, "legacy-tls")); err != nil {
		t.Fatal(err)
	}
	s.waitShimCertificate(t, "legacy-tls")
	if sec := getSecret(t, s.st.Client, client.ObjectKey{Namespace: gwNamespace, Name: "legacy-tls"}); sec.Type != corev1.SecretTypeTLS || !isPlaceholder(sec) {
		t.Fatalf("legacy-tls (class not marked): type %q, placeholder %v; want a kubernetes.io/tls placeholder", sec.Type, isPlaceholder(sec))
	}
	backend := &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "legacy", Port: networkingv1.ServiceBackendPort{Number: 8080}}}
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: gwNamespace, Name: "legacy"},
		Spec: networkingv1.IngressSpec{DefaultBackend: backend, TLS: []networkingv1.IngressTLS{{Hosts: []string{"legacy.gw.example.com"}, SecretName: "legacy-tls"}}}}
	fed := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: gwNamespace, Name: "fed", Annotations: map[string]string{listeners.AnnotationTLSServedBy: "keyward-agent"}},
		Spec: networkingv1.IngressSpec{DefaultBackend: backend, TLS: []networkingv1.IngressTLS{{Hosts: []string{"legacy.gw.example.com"}, SecretName: "legacy-tls"}}}}
	apisix := &unstructured.Unstructured{}
	apisix.SetGroupVersionKind(listeners.ApisixTlsGVK)
	apisix.SetNamespace(gwNamespace)
	apisix.SetName("legacy")
	apisix.Object["spec"] = map[string]any{"hosts": []any{"legacy.gw.example.com"}, "secret": map[string]any{"name": "legacy-tls", "namespace": gwNamespace}}
	for _, o := range []client.Object{ing, fed, apisix} {
		if err := s.st.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []struct{ kind, name, reason string }{
		{"Gateway", "legacy", listeners.ReasonClassNotMarked},
		{"Ingress", "legacy", listeners.ReasonEmptyKey},
		{"ApisixTls", "legacy", listeners.ReasonEmptyKey},
		{"Certificate", "legacy-tls", ""},
	} {
		ev := waitUnservableEvent(t, s.st, want.kind, want.name)
		if !strings.HasPrefix(ev.Note, want.reason) || !strings.Contains(ev.Note, gwNamespace+"/legacy-tls") {
			t.Errorf("%s %s event: %q, want reason %s naming the Secret", want.kind, want.name, ev.Note, want.reason)
		}
		t.Logf("%s %s: %s", want.kind, want.name, ev.Note)
	}
	waitFor(t, 10*time.Second, "keyward_tls_references counts", func(context.Context) (bool, error) {
		return gaugeSum(t, s.st, "keyward_tls_references", map[string]string{"state": listeners.StateUnservable}) == 3 &&
			gaugeSum(t, s.st, "keyward_tls_references", map[string]string{"kind": "Gateway", "state": listeners.StateServable}) == 2 &&
			gaugeSum(t, s.st, "keyward_tls_references", map[string]string{"kind": "ListenerSet", "state": listeners.StateServable}) == 1 &&
			gaugeSum(t, s.st, "keyward_tls_references", map[string]string{"state": listeners.StateAcknowledged}) == 1, nil
	})
	if _, found, err := findUnservableEvent(ctx, s.st, "Ingress", "fed"); err != nil || found {
		t.Errorf("the acknowledged Ingress got an event (found %v, %v)", found, err)
	}
}

// examples: the Gateway API and RBAC objects of the keyward sds examples are
// accepted by the apiserver with strict field validation (dry run; the
// EnvoyProxy and Istio kinds are not installed here, deploy/test checks
// their wiring).
func (s *gatewaySuite) examples(t *testing.T) {
	ctx := context.Background()
	if err := s.st.CreateNamespace(ctx, "envoy-gateway-system", nil); err != nil {
		t.Fatal(err)
	}
	checked := map[string]int{}
	for _, f := range []string{"gateway-sds.yaml", "istio-gateway-sds.yaml"} {
		for _, o := range exampleObjects(t, f) {
			switch o.GetKind() {
			case "EnvoyProxy", "Deployment":
				continue // not installed here / a strategic merge patch
			case "Gateway":
				if o.GroupVersionKind().Group != gwapiv1.GroupName {
					continue // Istio's classic Gateway
				}
			}
			if err := s.st.Client.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict")); err != nil &&
				(!apierrors.IsAlreadyExists(err) || dryRunCreate(ctx, t, s.st.Client, o) != nil) {
				t.Errorf("%s: %s %s rejected: %v", f, o.GetKind(), o.GetName(), err)
			}
			checked[o.GetKind()]++
		}
	}
	if checked["GatewayClass"] != 1 || checked["Gateway"] != 1 || checked["Role"] != 1 || checked["ClusterRole"] != 1 {
		t.Errorf("checked %v, want the GatewayClass, Gateway and RBAC of gateway-sds.yaml", checked)
	}
}

func waitUnservableEvent(t *testing.T, st *keyward.Stack, kind, name string) eventsv1.Event {
	t.Helper()
	var ev eventsv1.Event
	waitFor(t, 30*time.Second, fmt.Sprintf("%s event on %s %s", listeners.EventReasonUnservable, kind, name), func(ctx context.Context) (bool, error) {
		e, found, err := findUnservableEvent(ctx, st, kind, name)
		ev = e
		return found, err
	})
	return ev
}

func findUnservableEvent(ctx context.Context, st *keyward.Stack, kind, name string) (eventsv1.Event, bool, error) {
	var list eventsv1.EventList
	if err := st.Client.List(ctx, &list, client.InNamespace(gwNamespace)); err != nil {
		return eventsv1.Event{}, false, err
	}
	for _, e := range list.Items {
		if e.Reason == listeners.EventReasonUnservable && e.Regarding.Kind == kind && e.Regarding.Name == name {
			return e, true, nil
		}
	}
	return eventsv1.Event{}, false, nil
}

// handshake completes a TLS handshake served with the SDS pair and returns
// the serial the client saw (lower-case hex), after verifying the chain to
// root for host.
func handshake(t *testing.T, sec sdsSecret, rootPEM []byte, host string) string {
	t.Helper()
	pair, err := tls.X509KeyPair(sec.chain, sec.key)
	if err != nil {
		t.Fatalf("SDS pair %s does not load: %v", sec.name, err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	srv, cli := net.Pipe()
	defer srv.Close()
	defer cli.Close()
	errc := make(chan error, 1)
	go func() {
		errc <- tls.Server(srv, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}).Handshake()
	}()
	c := tls.Client(cli, &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12})
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatalf("TLS handshake with the SDS pair %s: %v", sec.name, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server side of the handshake: %v", err)
	}
	return custody.SerialHex(c.ConnectionState().PeerCertificates[0])
}

func ptrTo[T any](v T) *T { return &v }
