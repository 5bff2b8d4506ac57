// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

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
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/keyward-io/keyward/custody"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	metafake "k8s.io/client-go/metadata/fake"
)

// testBundle issues a self-signed certificate for dnsName and returns it as
// the bundle of version v of ns/name.
func testBundle(t testing.TB, ns, name string, v int, dnsName string) *Bundle {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(1000 + v)),
		Subject:      pkix.Name{CommonName: dnsName},
		DNSNames:     []string{dnsName},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &Bundle{
		Namespace: ns, Name: name, Version: v,
		Serial:      custody.SerialHex(leaf),
		KeySHA256:   custody.Fingerprint(leaf.RawSubjectPublicKeyInfo),
		Key:         pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		DNSNames:    leaf.DNSNames,
		NotAfter:    leaf.NotAfter,
		WrittenAt:   time.Now(),
	}
}

func TestMemoryGetCertificate(t *testing.T) {
	m := NewMemory()
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example"}); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("empty sink: got %v, want ErrNoCertificate", err)
	}
	a := testBundle(t, "ns", "a", 1, "a.example")
	b := testBundle(t, "ns", "b", 1, "b.example")
	for _, x := range []*Bundle{a, b} {
		if err := m.Deliver(context.Background(), x); err != nil {
			t.Fatal(err)
		}
	}
	for sni, want := range map[string]string{"a.example": a.Serial, "b.example": b.Serial, "": a.Serial, "other.example": a.Serial} {
		c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
		if err != nil {
			t.Fatal(err)
		}
		if got := custody.SerialHex(c.Leaf); got != want {
			t.Errorf("SNI %q: serial %s, want %s", sni, got, want)
		}
	}
	b2 := testBundle(t, "ns", "b", 2, "b.example")
	if err := m.Deliver(context.Background(), b2); err != nil {
		t.Fatal(err)
	}
	if c := m.Certificate("ns/b"); c == nil || custody.SerialHex(c.Leaf) != b2.Serial {
		t.Errorf("after rotation ns/b serves %v, want serial %s", c, b2.Serial)
	}
	bad := testBundle(t, "ns", "a", 3, "a.example")
	bad.Key = testBundle(t, "ns", "x", 1, "x").Key
	if err := m.Deliver(context.Background(), bad); !errors.Is(err, ErrPermanent) {
		t.Errorf("mismatched key: got %v, want ErrPermanent", err)
	}
	if c := m.Certificate("ns/a"); custody.SerialHex(c.Leaf) != a.Serial {
		t.Error("a rejected bundle replaced the served certificate")
	}
}

func TestFilesRefusesDiskUnlessAllowed(t *testing.T) {
	dir := t.TempDir() // not tmpfs on this machine's layout; checked below
	if mem, _, err := onMemoryFS(dir); err != nil || mem {
		t.Fatalf("test needs a disk-backed temp dir; %s is memory-backed=%v (%v)", dir, mem, err)
	}
	if _, err := NewFiles(FilesOptions{Dir: dir}); !errors.Is(err, ErrNotTmpfs) {
		t.Fatalf("disk directory: got %v, want ErrNotTmpfs", err)
	}
	if _, err := NewFiles(FilesOptions{Dir: dir, AllowNonTmpfs: true}); err != nil {
		t.Fatalf("disk directory allowed explicitly: %v", err)
	}
	if _, err := NewFiles(FilesOptions{Dir: dir, AllowNonTmpfs: true, ReloadPidfile: "x", ReloadURL: "http://x"}); err == nil {
		t.Fatal("both reload actions accepted")
	}
}

func shmDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "keyward-unit-")
	if err != nil {
		t.Fatalf("this test needs /dev/shm (tmpfs): %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func TestFilesDeliverAtomicSwapAndReloadURL(t *testing.T) {
	var mu sync.Mutex
	var reloads []string
	fail := false
	dir := shmDir(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		// What a reloading server reads at this moment: the pair must match.
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, "ns", "web", FileCert), filepath.Join(dir, "ns", "web", FileKey))
		if err != nil {
			reloads = append(reloads, "mismatch: "+err.Error())
			return
		}
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		reloads = append(reloads, r.Method+" "+custody.SerialHex(leaf))
	}))
	defer srv.Close()
	f, err := NewFiles(FilesOptions{Dir: dir, ReloadURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v1 := testBundle(t, "ns", "web", 1, "web.example")
	if err := f.Deliver(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if err := f.Deliver(ctx, v1); err != nil { // idempotent: no rewrite, no reload
		t.Fatal(err)
	}
	v2 := testBundle(t, "ns", "web", 2, "web.example")
	mu.Lock()
	fail = true
	mu.Unlock()
	if err := f.Deliver(ctx, v2); err == nil || !strings.Contains(err.Error(), "reload failed") {
		t.Fatalf("reload answering 503: got %v", err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := f.Deliver(ctx, v2); err != nil { // retried: files already there, reload again
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(reloads, ",")
	mu.Unlock()
	if want := "POST " + v1.Serial + ",POST " + v2.Serial; got != want {
		t.Errorf("reloads = %s, want %s", got, want)
	}
	web := f.Dir("ns", "web")
	entries, _ := os.ReadDir(web)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 5 { // ..data, one ..v2_* dir, three symlinks
		t.Errorf("directory holds %v, want ..data, one version directory and three links", names)
	}
	for _, n := range []string{FileCert, FileKey, FileCA} {
		fi, err := os.Stat(filepath.Join(web, n))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", n, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(web); fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
	// A record rebuilt after a disaster restarts at version 1 with another key.
	again := testBundle(t, "ns", "web", 1, "web.example")
	again.Serial = "ffff"
	if err := f.Deliver(ctx, again); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(web, FileKey)); string(b) != string(again.Key) {
		t.Error("same version number with a new key was not written")
	}
}

func TestFilesReloadSignal(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	pidfile := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := NewFiles(FilesOptions{Dir: shmDir(t), ReloadPidfile: pidfile, ReloadSignal: syscall.SIGUSR1})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Deliver(context.Background(), testBundle(t, "ns", "web", 1, "web.example")); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGUSR1 {
		t.Fatalf("process ended with %v, want killed by SIGUSR1", err)
	}
	// No pidfile (the server has not started) or a stale one: nothing to
	// reload, the delivery succeeds. A pidfile with garbage is an error naming it.
	g, err := NewFiles(FilesOptions{Dir: shmDir(t), ReloadPidfile: filepath.Join(t.TempDir(), "none.pid")})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Deliver(context.Background(), testBundle(t, "ns", "web", 1, "web.example")); err != nil {
		t.Fatalf("missing pidfile: %v", err)
	}
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil { // cmd has exited
		t.Fatal(err)
	}
	h, err := NewFiles(FilesOptions{Dir: shmDir(t), ReloadPidfile: pidfile})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Deliver(context.Background(), testBundle(t, "ns", "web", 1, "web.example")); err != nil {
		t.Fatalf("stale pidfile: %v", err)
	}
	garbage := filepath.Join(t.TempDir(), "bad.pid")
	_ = os.WriteFile(garbage, []byte("nginx\n"), 0o644)
	k, err := NewFiles(FilesOptions{Dir: shmDir(t), ReloadPidfile: garbage})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Deliver(context.Background(), testBundle(t, "ns", "web", 1, "web.example")); err == nil || !strings.Contains(err.Error(), "bad.pid") {
		t.Fatalf("pidfile without a pid: got %v", err)
	}
}

// fakeReader serves bundles from a map and can be made to fail.
type fakeReader struct {
	mu      sync.Mutex
	bundles map[string]*Bundle
	err     error
	reads   int
}

func (r *fakeReader) Read(_ context.Context, ns, name string, v int) (*Bundle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads++
	if r.err != nil {
		return nil, r.err
	}
	b, ok := r.bundles[fmt.Sprintf("%s/%s/%d", ns, name, v)]
	if !ok {
		return nil, ErrNotFound
	}
	return b, nil
}

func (r *fakeReader) put(b *Bundle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bundles[fmt.Sprintf("%s/%s/%d", b.Namespace, b.Name, b.Version)] = b
}

func (r *fakeReader) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// recordingSink records deliveries and can be made to fail.
type recordingSink struct {
	mu       sync.Mutex
	got      []string
	fail     error
	failures int // deliveries refused with fail
}

func (s *recordingSink) Name() string { return "rec" }
func (s *recordingSink) Deliver(_ context.Context, b *Bundle) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		s.failures++
		return s.fail
	}
	s.got = append(s.got, fmt.Sprintf("%s v%d %s", b.ID(), b.Version, b.Serial))
	return nil
}

func (s *recordingSink) deliveries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func placeholder(ns, name string, b *Bundle) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{custody.LabelCustody: custody.LabelCustodyVault}, Annotations: map[string]string{
			custody.AnnotationPath:      "custody/tls/" + ns + "/" + name,
			custody.AnnotationVersion:   strconv.Itoa(b.Version),
			custody.AnnotationKeySHA256: b.KeySHA256,
			custody.AnnotationSerial:    b.Serial,
		}},
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAgentDeliversOnVersionChangeAndRetries(t *testing.T) {
	v1 := testBundle(t, "ns", "web-tls", 1, "web.example")
	reader := &fakeReader{bundles: map[string]*Bundle{}}
	reader.put(v1)
	// An unrelated Secret in the namespace must be ignored.
	other := testBundle(t, "ns", "other", 7, "other.example")
	md := metafake.NewSimpleMetadataClient(testScheme(), placeholder("ns", "web-tls", v1), placeholder("ns", "other", other))
	sink := &recordingSink{}
	a, err := NewAgent(AgentOptions{
		Secrets: []types.NamespacedName{{Namespace: "ns", Name: "web-tls"}}, Metadata: md, Reader: reader,
		Sinks: []Sink{sink}, RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond, Logger: testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.Run(ctx) }()
	waitUntil(t, "first delivery", a.Ready)
	if got := sink.deliveries(); len(got) != 1 || got[0] != "ns/web-tls v1 "+v1.Serial {
		t.Fatalf("deliveries = %v", got)
	}

	// Vault down during a rotation: the sink keeps v1, the agent retries
	// by itself and delivers v2 once reads work again.
	reader.setErr(errors.New("vault unreachable"))
	v2 := testBundle(t, "ns", "web-tls", 2, "web.example")
	reader.put(v2)
	res := md.Resource(secretsResource).Namespace("ns").(metafake.MetadataClient)
	if _, err := res.UpdateFake(placeholder("ns", "web-tls", v2), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a failed read", func() bool { s := a.Status()[0]; return s.Errors["vault"] != "" && s.Wanted == 2 })
	if s := a.Status()[0]; s.Version != 1 || s.Serial != v1.Serial || s.Sinks["rec"] != 1 || s.State != "pending" {
		t.Errorf("status during the outage = %+v, want sink at 1, pending", s)
	}
	reader.setErr(nil)
	waitUntil(t, "delivery after the outage", func() bool { return a.Status()[0].State == "delivered" })
	if s := a.Status()[0]; s.Version != 2 || s.Serial != v2.Serial || len(s.Errors) != 0 {
		t.Errorf("status after recovery = %+v", s)
	}

	// A sink failure is retried; the bundle is not read again.
	v3 := testBundle(t, "ns", "web-tls", 3, "web.example")
	reader.put(v3)
	sink.mu.Lock()
	sink.fail = errors.New("gateway down")
	sink.mu.Unlock()
	if _, err := res.UpdateFake(placeholder("ns", "web-tls", v3), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a failed delivery", func() bool { return a.Status()[0].Errors["rec"] != "" })
	reader.mu.Lock()
	readsBefore := reader.reads
	reader.mu.Unlock()
	sink.mu.Lock()
	failuresBefore := sink.failures
	sink.mu.Unlock()
	// Several retries: each is a refused delivery the sink counts.
	waitUntil(t, "two more failed deliveries", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.failures >= failuresBefore+2
	})
	sink.mu.Lock()
	sink.fail = nil
	sink.mu.Unlock()
	waitUntil(t, "delivery of v3", func() bool { return a.Status()[0].Version == 3 })
	reader.mu.Lock()
	if reader.reads != readsBefore {
		t.Errorf("sink retries read Vault again (%d reads, want %d)", reader.reads, readsBefore)
	}
	reader.mu.Unlock()

	// A record whose key is not the one the Secret names is never delivered.
	v4 := testBundle(t, "ns", "web-tls", 4, "web.example")
	forged := *v4
	forged.KeySHA256 = "00"
	reader.put(&forged)
	if _, err := res.UpdateFake(placeholder("ns", "web-tls", v4), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "mismatch reported", func() bool { return strings.Contains(a.Status()[0].Errors["vault"], "does not match") })
	got := sink.deliveries()
	if got[len(got)-1] != "ns/web-tls v3 "+v3.Serial {
		t.Errorf("last delivery %s, want v3 kept", got[len(got)-1])
	}
	for _, d := range got {
		if strings.Contains(d, "ns/other") {
			t.Errorf("delivered a Secret the agent does not serve: %s", d)
		}
	}
}

func TestAgentOptionsErrors(t *testing.T) {
	md := metafake.NewSimpleMetadataClient(testScheme())
	r := &fakeReader{}
	for name, o := range map[string]AgentOptions{
		"no secrets":   {Metadata: md, Reader: r, Sinks: []Sink{&recordingSink{}}},
		"no sinks":     {Secrets: []types.NamespacedName{{Namespace: "a", Name: "b"}}, Metadata: md, Reader: r},
		"no namespace": {Secrets: []types.NamespacedName{{Name: "b"}}, Metadata: md, Reader: r, Sinks: []Sink{&recordingSink{}}},
		"dup sinks":    {Secrets: []types.NamespacedName{{Namespace: "a", Name: "b"}}, Metadata: md, Reader: r, Sinks: []Sink{&recordingSink{}, &recordingSink{}}},
	} {
		if _, err := NewAgent(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func testScheme() *runtime.Scheme {
	s := metafake.NewTestScheme()
	metav1.AddMetaToScheme(s)
	return s
}

// resyncSink is a recordingSink that forgets on Resync.
type resyncSink struct {
	recordingSink
	resyncs int
}

func (s *resyncSink) Name() string { return "resync" }
func (s *resyncSink) Resync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resyncs++
}

func TestAgentResyncRedeliversFromMemory(t *testing.T) {
	v1 := testBundle(t, "ns", "web-tls", 1, "web.example")
	reader := &fakeReader{bundles: map[string]*Bundle{}}
	reader.put(v1)
	md := metafake.NewSimpleMetadataClient(testScheme(), placeholder("ns", "web-tls", v1))
	plain, gw := &recordingSink{}, &resyncSink{}
	a, err := NewAgent(AgentOptions{
		Secrets: []types.NamespacedName{{Namespace: "ns", Name: "web-tls"}}, Metadata: md, Reader: reader,
		Sinks: []Sink{plain, gw}, ResyncPeriod: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.Run(ctx) }()
	waitUntil(t, "three resyncs", func() bool { return len(gw.deliveries()) >= 3 })
	if n := len(plain.deliveries()); n != 1 {
		t.Errorf("a sink without Resync got %d deliveries, want 1", n)
	}
	reader.mu.Lock()
	defer reader.mu.Unlock()
	if reader.reads != 1 {
		t.Errorf("resync read Vault: %d reads, want 1", reader.reads)
	}
}
