// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package adopt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/scrubber"
)

// memStore is an in-memory custody store (this cluster's) and Source (the
// other cluster's); it counts reads so tests can tell what was asked.
type memStore struct {
	mu      sync.Mutex
	prefix  string
	recs    map[string]custody.Record
	reads   int
	metaErr error
}

func newMemStore(prefix string) *memStore {
	return &memStore{prefix: prefix, recs: map[string]custody.Record{}}
}

func (m *memStore) Path(ns, name string) string { return "custody/" + m.prefix + "/" + ns + "/" + name }

func (m *memStore) Put(_ context.Context, rec custody.Record, cas int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.recs[rec.Namespace+"/"+rec.Name]
	if cas >= 0 && cas != cur.Meta.Version {
		return 0, custody.ErrConflict
	}
	v := 1
	if ok {
		v = cur.Meta.Version + 1
	}
	rec.Meta.Version = v
	m.recs[rec.Namespace+"/"+rec.Name] = rec
	return v, nil
}

func (m *memStore) Metadata(_ context.Context, ns, name string) (custody.Metadata, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.metaErr != nil {
		return custody.Metadata{}, m.metaErr
	}
	rec, ok := m.recs[ns+"/"+name]
	if !ok {
		return custody.Metadata{}, custody.ErrNotFound
	}
	return rec.Meta, nil
}

func (m *memStore) Read(_ context.Context, ns, name string, version int) (custody.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	rec, ok := m.recs[ns+"/"+name]
	if !ok || rec.Meta.Version != version {
		return custody.Record{}, custody.ErrNotFound
	}
	return rec, nil
}

func (m *memStore) Delete(_ context.Context, ns, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, ns+"/"+name)
	return nil
}

// sourceRecord is east's record of shop/web-tls: a P-256 key and a
// certificate for web.shop.example.com issued by VaultClusterIssuer vault.
func sourceRecord(t *testing.T, now time.Time) custody.Record {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x5eed), Subject: pkix.Name{CommonName: "web.shop.example.com"},
		DNSNames: []string{"web.shop.example.com"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return custody.Record{
		Namespace: "shop", Name: "web-tls",
		Key:         pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Meta: custody.Metadata{
			CertificateName: "web", IssuerName: "vault", IssuerKind: "VaultClusterIssuer", IssuerGroup: "vault.keyward.io",
			Serial: custody.SerialHex(leaf), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter,
			KeySHA256: custody.Fingerprint(leaf.RawSubjectPublicKeyInfo),
		},
	}
}

func webCertificate() *cmapi.Certificate {
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: cmapi.CertificateSpec{
			SecretName: "web-tls", DNSNames: []string{"web.shop.example.com"}, CommonName: "web.shop.example.com",
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Name: "vault", Kind: "VaultClusterIssuer", Group: "vault.keyward.io"},
		},
	}
}

type fixture struct {
	adopter *Adopter
	east    *memStore
	west    *memStore
	kube    client.Client
}

func newFixture(t *testing.T, strict bool, objs ...client.Object) *fixture {
	t.Helper()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(now)
	east, west := newMemStore("tls/east"), newMemStore("tls/west")
	if _, err := east.Put(context.Background(), sourceRecord(t, now), 0); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	scrub, err := scrubber.NewScrubber(west, clk, nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		adopter: &Adopter{
			Sources: func(cluster string) (Source, error) {
				if cluster != "east" {
					return nil, errors.New("not allowed to adopt from " + cluster)
				}
				return east, nil
			},
			Scrubber: scrub, SecretReader: kube, SecretWriter: kube,
			Strict: scrubber.FixedStrictMode(strict), Clock: clk, Self: "west",
		},
		east: east, west: west, kube: kube,
	}
}

func TestAdoptCopiesTheRecordAndRestoresThePlaceholder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	res, err := f.adopter.Adopt(context.Background(), webCertificate(), "east", false)
	if err != nil || res.Outcome != Adopted || res.CustodyVersion != 1 || res.Path != "custody/tls/east/shop/web-tls" {
		t.Fatalf("Adopt = %+v, %v; want adopted at version 1 from custody/tls/east/shop/web-tls", res, err)
	}
	src, dst := f.east.recs["shop/web-tls"], f.west.recs["shop/web-tls"]
	if string(dst.Key) != string(src.Key) || string(dst.Certificate) != string(src.Certificate) || dst.Meta.Serial != src.Meta.Serial {
		t.Fatalf("west's record differs from east's")
	}
	var s corev1.Secret
	if err := f.kube.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "web-tls"}, &s); err != nil {
		t.Fatal(err)
	}
	p, ok := custody.ParsePlaceholder(&s)
	if !ok || p.Version != 1 || p.Path != "custody/tls/west/shop/web-tls" || p.Serial != src.Meta.Serial || p.KeySHA256 != src.Meta.KeySHA256 {
		t.Fatalf("placeholder = %+v (ok %v)", p, ok)
	}
	if len(s.Data[custody.DataKey]) != 0 || string(s.Data[custody.DataCertificate]) != string(src.Certificate) || s.Type != corev1.SecretTypeTLS {
		t.Errorf("placeholder must hold the certificate and an empty key, type kubernetes.io/tls")
	}
	for k, want := range map[string]string{
		cmapi.CertificateNameKey: "web", cmapi.IssuerNameAnnotationKey: "vault", cmapi.IssuerKindAnnotationKey: "VaultClusterIssuer",
		cmapi.IssuerGroupAnnotationKey: "vault.keyward.io", cmapi.AltNamesAnnotationKey: "web.shop.example.com",
		cmapi.CommonNameAnnotationKey: "web.shop.example.com", custody.AnnotationScrubbedBy: scrubber.ByAdoption,
	} {
		if got := s.Annotations[k]; got != want {
			t.Errorf("annotation %s = %q, want %q", k, got, want)
		}
	}
	if s.Labels[cmapi.PartOfCertManagerControllerLabelKey] != "true" {
		t.Errorf("placeholder lacks cert-manager's part-of label")
	}
}

func TestAdoptLeavesExistingSecretsAndMissingRecordsAlone(t *testing.T) {
	t.Parallel()
	existing := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-tls"}}
	f := newFixture(t, false, existing)
	res, err := f.adopter.Adopt(context.Background(), webCertificate(), "east", false)
	if err != nil || res.Outcome != SecretExists || f.east.reads != 0 || len(f.west.recs) != 0 {
		t.Fatalf("Secret present: Adopt = %+v, %v, %d Vault reads, %d records written; want secret-exists with no Vault call", res, err, f.east.reads, len(f.west.recs))
	}

	f = newFixture(t, false)
	crt := webCertificate()
	crt.Spec.SecretName = "other-tls"
	if res, err := f.adopter.Adopt(context.Background(), crt, "east", false); err != nil || res.Outcome != NoRecord || len(f.west.recs) != 0 {
		t.Fatalf("no record: Adopt = %+v, %v; want no-record, nothing written", res, err)
	}

	f = newFixture(t, false)
	f.adopter.Clock = clocktesting.NewFakePassiveClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	if res, err := f.adopter.Adopt(context.Background(), webCertificate(), "east", false); err != nil || res.Outcome != Expired || len(f.west.recs) != 0 {
		t.Fatalf("expired: Adopt = %+v, %v; want expired, nothing written", res, err)
	}

	f = newFixture(t, false)
	if res, err := f.adopter.Adopt(context.Background(), webCertificate(), "east", true); err != nil || res.Outcome != DryRun || len(f.west.recs) != 0 {
		t.Fatalf("dry run: Adopt = %+v, %v; want dry-run, nothing written", res, err)
	}
	var s corev1.Secret
	if err := f.kube.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "web-tls"}, &s); err == nil {
		t.Fatalf("dry run created the Secret")
	}
}

func TestAdoptRefusesWhatDoesNotFit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		change  func(*cmapi.Certificate)
		cluster string
		strict  bool
		metaErr error
		want    string
		wantErr error
	}{
		{name: "other DNS names", change: func(c *cmapi.Certificate) { c.Spec.DNSNames = []string{"api.shop.example.com"} }, want: "spec.dnsNames", wantErr: ErrMismatch},
		{name: "other key size", change: func(c *cmapi.Certificate) { c.Spec.PrivateKey.Size = 384 }, want: "spec.privateKey.size", wantErr: ErrMismatch},
		{name: "other key algorithm", change: func(c *cmapi.Certificate) { c.Spec.PrivateKey = nil }, want: "spec.privateKey.algorithm", wantErr: ErrMismatch},
		{name: "other issuer", change: func(c *cmapi.Certificate) { c.Spec.IssuerRef.Name = "acme" }, want: `issued by VaultClusterIssuer "vault"`, wantErr: ErrMismatch},
		{name: "other Certificate name", change: func(c *cmapi.Certificate) { c.Name = "web2" }, want: `issued for Certificate "web"`, wantErr: ErrMismatch},
		{name: "strict namespace", strict: true, want: "keyward.io/redact-certificates=false", wantErr: ErrStrict},
		{name: "this cluster", cluster: "west", want: "names this cluster"},
		{name: "cluster not allowed", cluster: "north", want: "not allowed to adopt from north"},
		{name: "vault error", metaErr: errors.New("vault: 503"), want: "vault: 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.strict)
			f.east.metaErr = tc.metaErr
			crt := webCertificate()
			if tc.change != nil {
				tc.change(crt)
			}
			cluster := tc.cluster
			if cluster == "" {
				cluster = "east"
			}
			_, err := f.adopter.Adopt(context.Background(), crt, cluster, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Adopt error = %v, want one containing %q (wrapping %v)", err, tc.want, tc.wantErr)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error carries key material")
			}
			if len(f.west.recs) != 0 {
				t.Fatalf("a refused adoption wrote this cluster's record")
			}
			var s corev1.Secret
			if err := f.kube.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "web-tls"}, &s); err == nil {
				t.Fatalf("a refused adoption created the Secret")
			}
		})
	}
}
