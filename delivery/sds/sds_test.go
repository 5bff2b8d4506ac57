// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package sds

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	metafake "k8s.io/client-go/metadata/fake"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/delivery/internal/deliverytest"
)

// testCA is a CA that issues the test certificates; a handshake verifies
// the chain up to it.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyward test CA"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// bundle issues a leaf for dnsName and returns it as version v of ns/name:
// Certificate holds the leaf and the CA (standing in for an intermediate).
func (ca *testCA) bundle(t testing.TB, ns, name string, v int, dnsName string) *delivery.Bundle {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(1000 + v)), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &delivery.Bundle{
		Namespace: ns, Name: name, Version: v,
		Serial:      custody.SerialHex(leaf),
		KeySHA256:   custody.Fingerprint(leaf.RawSubjectPublicKeyInfo),
		Key:         pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		Certificate: append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.pem...),
		CA:          ca.pem,
		NotAfter:    leaf.NotAfter,
		WrittenAt:   time.Now(),
	}
}

// fakeReader serves bundles from a map and can be made to fail, as Vault
// being unreachable does.
type fakeReader struct {
	mu      sync.Mutex
	bundles map[string]*delivery.Bundle
	err     error
}

func (r *fakeReader) Read(_ context.Context, ns, name string, v int) (*delivery.Bundle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	b, ok := r.bundles[fmt.Sprintf("%s/%s/%d", ns, name, v)]
	if !ok {
		return nil, delivery.ErrNotFound
	}
	return b, nil
}

func (r *fakeReader) put(b *delivery.Bundle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bundles[fmt.Sprintf("%s/%s/%d", b.Namespace, b.Name, b.Version)] = b
}

func (r *fakeReader) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

func placeholder(b *delivery.Bundle) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: b.Name, Labels: map[string]string{custody.LabelCustody: custody.LabelCustodyVault}, Annotations: map[string]string{
			custody.AnnotationPath:      "custody/tls/" + b.Namespace + "/" + b.Name,
			custody.AnnotationVersion:   strconv.Itoa(b.Version),
			custody.AnnotationKeySHA256: b.KeySHA256,
			custody.AnnotationSerial:    b.Serial,
		}},
	}
}

func testScheme() *runtime.Scheme {
	s := metafake.NewTestScheme()
	metav1.AddMetaToScheme(s)
	return s
}

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// fixture is a running `keyward sds` without Kubernetes Gateways: a
// dynamic agent over fake custody and metadata, the sink, and the server
// on a unix socket in a temp dir.
type fixture struct {
	ca     *testCA
	reader *fakeReader
	md     *metafake.FakeMetadataClient
	agent  *delivery.Agent
	sink   *Sink
	m      *Metrics
	target Target
	socket string
	conn   *grpc.ClientConn
}

func newFixture(t *testing.T, bundles ...*delivery.Bundle) *fixture {
	t.Helper()
	f := &fixture{reader: &fakeReader{bundles: map[string]*delivery.Bundle{}}}
	var objs []runtime.Object
	for _, b := range bundles {
		f.reader.put(b)
		objs = append(objs, placeholder(b))
	}
	f.md = metafake.NewSimpleMetadataClient(testScheme(), objs...)
	var err error
	if f.m, err = NewMetrics(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	log := testr.NewWithOptions(t, testr.Options{Verbosity: 1})
	f.sink = NewSink(SinkOptions{Logger: log, Metrics: f.m})
	f.agent, err = delivery.NewAgent(delivery.AgentOptions{
		Dynamic: true, Metadata: f.md, Reader: f.reader, Sinks: []delivery.Sink{f.sink}, Logger: log,
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.target = Serving(f.agent, f.sink)
	ctx, cancel := context.WithCancel(context.Background())
	f.socket = filepath.Join(t.TempDir(), "sds.sock")
	lis, err := Listen(f.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(f.sink, ServerOptions{Logger: log, Metrics: f.m})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = f.agent.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, lis); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	f.conn, err = grpc.NewClient("unix://"+f.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.conn.Close(); cancel(); wg.Wait() })
	return f
}

func (f *fixture) rotate(t *testing.T, b *delivery.Bundle) {
	t.Helper()
	f.reader.put(b)
	res := f.md.Resource(secretsGVR).Namespace(b.Namespace).(metafake.MetadataClient)
	if _, err := res.UpdateFake(placeholder(b), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// response is what a stream got: the version (sotw: version_info; delta:
// the resources' versions joined), the secrets by name, and removals.
type response struct {
	version string
	secrets map[string]*tlsv3.Secret
	removed []string
}

// sdsStream is one SDS stream of either flavour, driven as Envoy does: it
// subscribes to names and ACKs every response.
type sdsStream interface {
	next(ctx context.Context) (response, error)
}

type sotwStream struct {
	s     secretv3.SecretDiscoveryService_StreamSecretsClient
	names []string
}

func openSotW(ctx context.Context, t *testing.T, f *fixture, names ...string) sdsStream {
	t.Helper()
	s, err := secretv3.NewSecretDiscoveryServiceClient(f.conn).StreamSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "test-proxy"}, TypeUrl: resourcev3.SecretType, ResourceNames: names}
	if err := s.Send(req); err != nil {
		t.Fatal(err)
	}
	return &sotwStream{s: s, names: names}
}

func (s *sotwStream) next(context.Context) (response, error) {
	resp, err := s.s.Recv()
	if err != nil {
		return response{}, err
	}
	out := response{version: resp.GetVersionInfo(), secrets: map[string]*tlsv3.Secret{}}
	for _, a := range resp.GetResources() {
		sec := &tlsv3.Secret{}
		if err := a.UnmarshalTo(sec); err != nil {
			return response{}, err
		}
		out.secrets[sec.GetName()] = sec
	}
	ack := &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.SecretType, ResourceNames: s.names, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
	return out, s.s.Send(ack)
}

type deltaStream struct {
	s secretv3.SecretDiscoveryService_DeltaSecretsClient
}

func openDelta(ctx context.Context, t *testing.T, f *fixture, names ...string) sdsStream {
	t.Helper()
	s, err := secretv3.NewSecretDiscoveryServiceClient(f.conn).DeltaSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := &discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "test-proxy"}, TypeUrl: resourcev3.SecretType, ResourceNamesSubscribe: names}
	if err := s.Send(req); err != nil {
		t.Fatal(err)
	}
	return &deltaStream{s: s}
}

func (s *deltaStream) next(context.Context) (response, error) {
	resp, err := s.s.Recv()
	if err != nil {
		return response{}, err
	}
	out := response{secrets: map[string]*tlsv3.Secret{}, removed: resp.GetRemovedResources()}
	for _, r := range resp.GetResources() {
		sec := &tlsv3.Secret{}
		if err := r.GetResource().UnmarshalTo(sec); err != nil {
			return response{}, err
		}
		out.secrets[r.GetName()] = sec
		out.version += r.GetName() + "@" + r.GetVersion() + " "
	}
	return out, s.s.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.SecretType, ResponseNonce: resp.GetNonce()})
}

// protocols open a stream of each flavour.
var protocols = map[string]func(context.Context, *testing.T, *fixture, ...string) sdsStream{
	"sotw": openSotW, "delta": openDelta,
}

// nextWith returns the stream's next response holding name, skipping
// empty ones (a state of the world stream's first answer before the
// delivery), within the context's deadline.
func nextWith(ctx context.Context, t *testing.T, s sdsStream, name string) response {
	t.Helper()
	for {
		if ctx.Err() != nil {
			t.Fatalf("no response holding %s: %v", name, ctx.Err())
		}
		r, err := s.next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", name, err)
		}
		if r.secrets[name] != nil {
			return r
		}
	}
}

// keyPair checks the served secret is a usable pair and returns it.
func keyPair(t *testing.T, sec *tlsv3.Secret) tls.Certificate {
	t.Helper()
	tc := sec.GetTlsCertificate()
	if tc == nil {
		t.Fatalf("secret %s holds no TLS certificate: %v", sec.GetName(), sec)
	}
	c, err := tls.X509KeyPair(tc.GetCertificateChain().GetInlineBytes(), tc.GetPrivateKey().GetInlineBytes())
	if err != nil {
		t.Fatalf("secret %s: %v", sec.GetName(), err)
	}
	return c
}

// handshake serves pair over an in-memory connection and returns the leaf
// serial a client verifying against ca saw for serverName.
func handshake(t *testing.T, pair tls.Certificate, ca *testCA, serverName string) string {
	t.Helper()
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	srvErr := make(chan error, 1)
	go func() { srvErr <- tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{pair}}).Handshake() }()
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	client := tls.Client(cc, &tls.Config{RootCAs: roots, ServerName: serverName})
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	chain := client.ConnectionState().PeerCertificates
	if len(chain) != 2 {
		t.Errorf("peer sent %d certificates, want leaf and intermediate", len(chain))
	}
	return custody.SerialHex(chain[0])
}

func web() types.NamespacedName { return types.NamespacedName{Namespace: "shop", Name: "web-tls"} }

func TestServesKeyPairAndPushesRotation(t *testing.T) {
	t.Parallel()
	for proto, open := range protocols {
		for _, name := range ResourceNames(web()) {
			t.Run(proto+" "+name, func(t *testing.T) {
				t.Parallel()
				ca := newTestCA(t)
				v1 := ca.bundle(t, "shop", "web-tls", 1, "web.example")
				f := newFixture(t, v1)
				if err := f.target.Add(web()); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s := open(ctx, t, f, name)
				first := nextWith(ctx, t, s, name)
				if got := handshake(t, keyPair(t, first.secrets[name]), ca, "web.example"); got != v1.Serial {
					t.Fatalf("handshake served serial %s, want v1 %s", got, v1.Serial)
				}
				if n := len(first.secrets); n != 1 {
					t.Errorf("response holds %d secrets, want only %s", n, name)
				}

				// A new custody version: pushed to the open stream.
				v2 := ca.bundle(t, "shop", "web-tls", 2, "web.example")
				f.rotate(t, v2)
				second := nextWith(ctx, t, s, name)
				if got := handshake(t, keyPair(t, second.secrets[name]), ca, "web.example"); got != v2.Serial {
					t.Fatalf("after rotation the handshake served serial %s, want v2 %s", got, v2.Serial)
				}
				if second.version == first.version {
					t.Errorf("version %q did not change with the custody version", second.version)
				}
				if got := testutil.ToFloat64(f.m.pushes); got < 2 {
					t.Errorf("pushes = %v, want at least 2", got)
				}
			})
		}
	}
}

func TestServesOnlyAllowedNames(t *testing.T) {
	t.Parallel()
	for proto, open := range protocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			ca := newTestCA(t)
			v1 := ca.bundle(t, "shop", "web-tls", 1, "web.example")
			// In custody and in the API, but no Gateway of this proxy references it.
			other := ca.bundle(t, "shop", "other-tls", 4, "other.example")
			f := newFixture(t, v1, other)
			if err := f.target.Add(web()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			before := testutil.ToFloat64(f.m.unserved.WithLabelValues(ReasonNotReferenced))
			s := open(ctx, t, f, "sds://shop/web-tls", "shop/other-tls", "sds://shop/other-tls", "not-a-name")
			r := nextWith(ctx, t, s, "sds://shop/web-tls")
			if len(r.secrets) != 1 {
				t.Errorf("got secrets %v, want only sds://shop/web-tls", keys(r.secrets))
			}
			if got := testutil.ToFloat64(f.m.unserved.WithLabelValues(ReasonNotReferenced)) - before; got != 3 {
				t.Errorf("unserved{not_referenced} moved by %v, want 3", got)
			}
			if got := testutil.ToFloat64(f.m.resources); got != 2 {
				t.Errorf("keyward_sds_resources = %v, want 2 (both names of the one allowed Secret)", got)
			}
		})
	}
}

func keys(m map[string]*tlsv3.Secret) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestWildcardRefused(t *testing.T) {
	t.Parallel()
	for proto, open := range protocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			ca := newTestCA(t)
			f := newFixture(t, ca.bundle(t, "shop", "web-tls", 1, "web.example"))
			if err := f.target.Add(web()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := open(ctx, t, f, "*").next(ctx)
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("wildcard request: got %v, want InvalidArgument", err)
			}
			if got := testutil.ToFloat64(f.m.unserved.WithLabelValues(ReasonWildcard)); got != 1 {
				t.Errorf("unserved{wildcard} = %v, want 1", got)
			}
		})
	}
}

func TestKeepsServingWhileCustodyUnreachable(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	v1 := ca.bundle(t, "shop", "web-tls", 1, "web.example")
	f := newFixture(t, v1)
	if err := f.target.Add(web()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nextWith(ctx, t, openSotW(ctx, t, f, "shop/web-tls"), "shop/web-tls") // v1 delivered

	// Custody goes away and a renewal lands: the read fails and is retried.
	f.reader.setErr(errors.New("vault: connection refused"))
	f.rotate(t, ca.bundle(t, "shop", "web-tls", 2, "web.example"))
	for st := f.agent.Status(); len(st) != 1 || st[0].Errors["vault"] == "" || st[0].Wanted != 2; st = f.agent.Status() {
		if ctx.Err() != nil {
			t.Fatalf("the agent never failed to read v2: %+v", st)
		}
		time.Sleep(5 * time.Millisecond) // the agent has no event to wait on for a failed read
	}
	// A proxy connecting now (a restarted Envoy) still gets the last key.
	for proto, open := range protocols {
		r := nextWith(ctx, t, open(ctx, t, f, "shop/web-tls"), "shop/web-tls")
		if got := handshake(t, keyPair(t, r.secrets["shop/web-tls"]), ca, "web.example"); got != v1.Serial {
			t.Errorf("%s stream during the outage served serial %s, want the last delivered %s", proto, got, v1.Serial)
		}
	}
	if !f.agent.Ready() {
		t.Error("not ready during the outage, though the last key is served")
	}
}

func TestRemoveTellsDeltaStreams(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	f := newFixture(t, ca.bundle(t, "shop", "web-tls", 1, "web.example"))
	if err := f.target.Add(web()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := openDelta(ctx, t, f, "shop/web-tls")
	nextWith(ctx, t, s, "shop/web-tls")
	f.target.Remove(web())
	r, err := s.next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.removed) != 1 || r.removed[0] != "shop/web-tls" {
		t.Errorf("after Remove the stream got removed=%v secrets=%v, want shop/web-tls removed", r.removed, keys(r.secrets))
	}
	if got := testutil.ToFloat64(f.m.resources); got != 0 {
		t.Errorf("keyward_sds_resources = %v after Remove, want 0", got)
	}
	if len(f.agent.Status()) != 0 {
		t.Errorf("agent still serves %v", f.agent.Status())
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sds.sock")
	if err := os.WriteFile(path, nil, 0o600); err != nil { // what a killed server leaves
		t.Fatal(err)
	}
	lis, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
	}
}

func TestSinkRefusesMismatchedPairAndDisallowed(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	s := NewSink(SinkOptions{})
	b := ca.bundle(t, "shop", "web-tls", 1, "web.example")
	if err := s.Deliver(context.Background(), b); err != nil || s.cache.NumResources() != 0 {
		t.Fatalf("a Secret never allowed: err=%v, %d resources; want dropped", err, s.cache.NumResources())
	}
	s.Allow(web())
	bad := *b
	bad.Key = ca.bundle(t, "shop", "x", 1, "x").Key
	deliverytest.AssertDeliverError(t, s.Deliver(context.Background(), &bad), &bad, true, []string{"shop/web-tls"})
	if err := s.Deliver(context.Background(), b); err != nil || s.cache.NumResources() != 2 {
		t.Errorf("allowed Secret: err=%v, %d resources, want 2", err, s.cache.NumResources())
	}
	if got := s.unserved("shop/web-tls"); got != "" {
		t.Errorf("delivered name unserved: %s", got)
	}
	s.Allow(types.NamespacedName{Namespace: "shop", Name: "api-tls"})
	for name, want := range map[string]string{"sds://shop/api-tls": ReasonNotDeliveredYet, "shop/nope": ReasonNotReferenced, "shop": ReasonNotReferenced, "a/b/c": ReasonNotReferenced} {
		if got := s.unserved(name); got != want {
			t.Errorf("unserved(%q) = %q, want %q", name, got, want)
		}
	}
}
