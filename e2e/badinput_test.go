// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/guard"
	"github.com/keyward-io/keyward/issuer"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/scrubber"
)

// badInputCase is one row of the bad-input catalogue (docs/bad-input.md).
// start runs before any check, so the slow cases (issuance, issuer health)
// proceed in parallel; check then waits for the outcome, asserts it and
// returns the message the user sees, which the test logs so the catalogue
// can quote it.
type badInputCase struct {
	name string
	// where the user sees the message (documentation only).
	where string
	start func(t *testing.T) (check func(t *testing.T) string)
}

// badInput is the shared state of the catalogue's cases.
type badInput struct {
	st  *keyward.Stack
	c   client.Client
	ctx context.Context
	// leaf and key of a valid self-signed pair, reused by the Secret cases.
	keyPEM, certPEM []byte
}

// Namespaces of the catalogue.
const (
	biSecrets  = "bad"      // custody: Secrets written directly
	biCerts    = "certs"    // custody: Certificates
	biPlain    = "plain"    // not a custody namespace
	biMidScrub = "midscrub" // opted in while a scrub is in flight (-1, -2, -3)
	biLate     = "late"     // opted in after a bad Secret was stored
)

// TestBadInputCatalogue feeds Keyward every kind of bad input the catalogue
// in docs/bad-input.md lists, on one real stack, and pins the exact message a
// user sees for each and where.
func TestBadInputCatalogue(t *testing.T) {
	start := time.Now()
	st := keyward.StartStackForTest(t, keyward.StackOptions{
		Options: func(o *app.Options) { o.CustodyAuditPeriod = 2 * time.Second },
	})
	t.Logf("stack up in %s", time.Since(start).Round(time.Millisecond))
	b := &badInput{st: st, c: st.Client, ctx: context.Background()}
	b.keyPEM, b.certPEM = selfSignedPair(t, "pair.example.com")

	custodyNamespace(t, st, biSecrets, nil)
	custodyNamespace(t, st, biCerts, nil)
	for _, ns := range []string{biPlain, biLate, biMidScrub + "-1", biMidScrub + "-2", biMidScrub + "-3"} {
		if err := st.CreateNamespace(b.ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
	}
	good := keywardClusterIssuer(st, "vault")
	policed := keywardClusterIssuer(st, "vault-policy")
	policed.Spec.Policy = &v1alpha1.KeyPolicy{AllowedDNSNames: []string{"*.example.com"}}
	mustCreate(t, b.c, good, policed)

	cases := b.cases()
	checks := make([]func(t *testing.T) string, len(cases))
	for i, tc := range cases {
		checks[i] = tc.start(t)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := checks[i](t)
			t.Logf("CATALOGUE %s | %s | %s", tc.name, tc.where, msg)
		})
	}
	t.Logf("catalogue of %d cases done in %s", len(cases), time.Since(start).Round(time.Millisecond))
}

func (b *badInput) cases() []badInputCase {
	return []badInputCase{
		// --- Secrets written straight to a custody namespace: the scrub webhook.
		b.deniedSecret("malformed PEM key", "malformed-pem", func(d map[string][]byte) {
			d["tls.key"] = []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
		}, "tls.key: malformed private key: PRIVATE KEY block"),
		b.deniedSecret("key that is not PEM at all", "not-pem", func(d map[string][]byte) {
			d["tls.key"] = []byte("just some text")
		}, "tls.key: malformed private key: no PEM block"),
		b.deniedSecret("two keys in tls.key", "two-keys", func(d map[string][]byte) {
			d["tls.key"] = append(bytes.Clone(d["tls.key"]), d["tls.key"]...)
		}, "tls.key: malformed private key: more than one PEM block or trailing data"),
		b.deniedSecret("key without certificate", "key-no-cert", func(d map[string][]byte) {
			d["tls.crt"] = []byte{}
		}, "tls.crt: private key without certificate"),
		b.deniedSecret("mismatched key and certificate", "mismatch", func(d map[string][]byte) {
			other, _ := selfSignedPair(nil, "other.example.com")
			d["tls.key"] = other
		}, "tls.key: private key does not match the certificate's public key: serial "),
		b.deniedSecret("encrypted PEM key (legacy Proc-Type)", "encrypted-legacy", func(d map[string][]byte) {
			d["tls.key"] = legacyEncryptedKey()
		}, "tls.key: encrypted private key is not supported"),
		b.deniedSecret("encrypted PKCS#8 key", "encrypted-pkcs8", func(d map[string][]byte) {
			blk, _ := pem.Decode(d["tls.key"])
			d["tls.key"] = pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: blk.Bytes})
		}, "tls.key: encrypted private key is not supported"),
		b.deniedSecret("keystore.jks in the Secret", "jks", func(d map[string][]byte) {
			d["keystore.jks"] = []byte("not really a keystore, but it must never be stored")
		}, "keystore.jks: key-bearing output formats are not supported under key custody: remove additionalOutputFormats and keystores from Certificate jks and build them from the custody record"),
		b.deniedSecret("key.der and tls-combined.pem in the Secret", "der", func(d map[string][]byte) {
			blk, _ := pem.Decode(d["tls.key"])
			d["key.der"] = blk.Bytes
			d["tls-combined.pem"] = append(bytes.Clone(d["tls.key"]), d["tls.crt"]...)
		}, "key.der, tls-combined.pem: key-bearing output formats are not supported under key custody"),
		b.dryRunDenied(),
		b.generateName(),
		b.truststoreOnly(),
		b.certWithoutKey(),
		b.nearOneMiB(),
		b.overOneMiBValue(),
		b.overOneMiBTotal(),
		b.opaqueUnannotated(),
		b.tlsNotCertManager(),

		// --- Issuers: Ready=False with a precise reason.
		b.crdRejectsServer(),
		b.issuerNotReady("server unreachable", "bad-unreachable", func(s *v1alpha1.VaultIssuerSpec) {
			s.Server = "http://127.0.0.1:1"
		}, issuer.ReasonVaultUnreachable, "checking health of vault http://127.0.0.1:1: "),
		b.issuerNotReady("CA bundle that is not PEM", "bad-ca-pem", func(s *v1alpha1.VaultIssuerSpec) {
			s.CABundle = []byte("this is not a certificate")
		}, issuer.ReasonInvalidConfig, "configuring TLS for vault "),
		b.wrongCAIssuer(),
		b.issuerNotReady("unknown Kubernetes auth role", "bad-auth-role", func(s *v1alpha1.VaultIssuerSpec) {
			s.Auth.Kubernetes.Role = "no-such-role"
		}, issuer.ReasonAuthFailed, `invalid role name "no-such-role"`),
		b.issuerNotReady("PKI role the issuer policy does not cover", "bad-pki-role", func(s *v1alpha1.VaultIssuerSpec) {
			s.Path = framework.VaultIntPKIMount + "/sign/no-such-role"
		}, issuer.ReasonPermissionDenied, "may not write to pki_int/sign/no-such-role"),
		b.appRoleIssuer("destroyed AppRole secret ID", "bad-approle-destroyed", true, issuer.ReasonAuthFailed, "logging in to vault with approle auth"),
		b.appRoleIssuer("AppRole secret ID Secret missing", "bad-approle-nosecret", false, issuer.ReasonInvalidConfig, `secrets "bad-approle-nosecret-secret-id" not found`),

		// --- Requests: permanent failures that name the rule.
		b.failedCertificate("SAN forbidden by the issuer's key policy", "policy-san", "vault-policy", "web.evil.org",
			`policy rule "dns-names": DNS name "web.evil.org" matches none of the allowed patterns *.example.com`, issuer.ReasonPolicyViolation),
		b.failedCertificate("SAN forbidden by the Vault role", "role-san", "vault", "evil.org",
			"vault rejected the request: subject alternate name evil.org not allowed by this role", issuer.ReasonVaultRejected),
		b.weakRSARequest(),
		b.missingIssuer(),

		// --- Certificates in a custody namespace.
		b.keystoreCertificate(),
		b.opaqueTarget(),
		b.rotationNever(),
		b.sharedSecretName(),
		b.tamperedRecord(),

		// --- The watcher; the mid-scrub cases pause Vault, so they come last.
		b.rejectedByWatcher(),
		b.deletedDuringWebhookScrub(),
		b.deletedDuringWatcherScrub(),
		b.outsideCustody(),
	}
}

// selfSignedPair returns a PEM PKCS#8 P-256 key and a self-signed certificate
// for dnsName. t may be nil (panics on error instead).
func selfSignedPair(t *testing.T, dnsName string) (keyPEM, certPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: dnsName},
		DNSNames:     []string{dnsName},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	must(t, err)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func must(t *testing.T, err error) {
	if err == nil {
		return
	}
	if t == nil {
		panic(err)
	}
	t.Helper()
	t.Fatal(err)
}

// legacyEncryptedKey is an EC key encrypted the way `openssl ec -aes256`
// writes it (RFC 1421 Proc-Type/DEK-Info headers).
func legacyEncryptedKey() []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(nil, err)
	der, err := x509.MarshalECPrivateKey(key)
	must(nil, err)
	//nolint:staticcheck // producing the legacy format on purpose: users still have such keys
	blk, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, []byte("password"), x509.PEMCipherAES256)
	must(nil, err)
	return pem.EncodeToMemory(blk)
}

// tlsSecret is a kubernetes.io/tls Secret that looks written by cert-manager
// for Certificate name (the certificate-name annotation puts it in scope).
func (b *badInput) tlsSecret(ns, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{
			scrubber.AnnotationCertificateName: name,
		}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.key": bytes.Clone(b.keyPEM), "tls.crt": bytes.Clone(b.certPEM)},
	}
}

// deniedSecret: an in-scope Secret whose create the scrub webhook denies.
func (b *badInput) deniedSecret(name, secret string, mutate func(map[string][]byte), want string) badInputCase {
	return badInputCase{name: name, where: "admission error (kubectl / the writer's log)", start: func(t *testing.T) func(t *testing.T) string {
		return func(t *testing.T) string {
			s := b.tlsSecret(biSecrets, secret)
			mutate(s.Data)
			err := b.c.Create(b.ctx, s)
			prefix := fmt.Sprintf(`admission webhook "secret-scrub.keyward.io" denied the request: keyward: secret %s/%s not admitted: planning custody for secret %s/%s: `, biSecrets, secret, biSecrets, secret)
			if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), prefix+want) {
				t.Fatalf("creating secret %s: error = %v\nwant Forbidden containing %q", secret, err, prefix+want)
			}
			b.assertNoSecret(t, biSecrets, secret)
			b.assertNoRecord(t, biSecrets, secret)
			return err.Error()
		}
	}}
}

func (b *badInput) assertNoSecret(t *testing.T, ns, name string) {
	t.Helper()
	err := b.c.Get(b.ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("secret %s/%s: get error = %v, want NotFound (nothing stored)", ns, name, err)
	}
}

func (b *badInput) assertNoRecord(t *testing.T, ns, name string) {
	t.Helper()
	if _, ok := readCustody(t, b.st, ns, name); ok {
		t.Errorf("custody record for %s/%s exists, want none", ns, name)
	}
}

// assertUntouched checks that a Secret still holds exactly what was written:
// its key, and none of Keyward's markers.
func (b *badInput) assertUntouched(t *testing.T, ns, name string, key []byte) {
	t.Helper()
	s := getSecret(t, b.c, client.ObjectKey{Namespace: ns, Name: name})
	if !bytes.Equal(s.Data["tls.key"], key) {
		t.Errorf("secret %s/%s: tls.key changed (%d bytes, want the %d written)", ns, name, len(s.Data["tls.key"]), len(key))
	}
	if s.Labels[custody.LabelCustody] != "" || s.Annotations[custody.AnnotationPath] != "" {
		t.Errorf("secret %s/%s carries custody markers: labels %v annotations %v", ns, name, s.Labels, s.Annotations)
	}
	b.assertNoRecord(t, ns, name)
}

func (b *badInput) dryRunDenied() badInputCase {
	return badInputCase{name: "server-side dry run of a bad Secret", where: "admission error of the dry run", start: func(t *testing.T) func(t *testing.T) string {
		return func(t *testing.T) string {
			s := b.tlsSecret(biSecrets, "dry-run")
			s.Data["tls.crt"] = []byte{}
			err := b.c.Create(b.ctx, s, client.DryRunAll)
			want := "keyward: secret bad/dry-run not admitted: planning custody for secret bad/dry-run: tls.crt: private key without certificate"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("dry-run create: error = %v, want the same denial as a real create (%q)", err, want)
			}
			return err.Error()
		}
	}}
}

func (b *badInput) generateName() badInputCase {
	return badInputCase{name: "Secret with generateName", where: "stored name / admission", start: func(t *testing.T) func(t *testing.T) string {
		return func(t *testing.T) string {
			s := b.tlsSecret(biSecrets, "")
			s.GenerateName = "gen-"
			s.Annotations[scrubber.AnnotationCertificateName] = "gen"
			err := b.c.Create(b.ctx, s)
			// The webhook sees the object before the apiserver generates the name.
			want := `admission webhook "secret-scrub.keyward.io" denied the request: keyward: secret bad/ not admitted: planning custody for secret bad/: secret has no name (generateName is not supported)`
			if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
				t.Fatalf("create with generateName: error = %v, want Forbidden containing %q", err, want)
			}
			return err.Error()
		}
	}}
}

func (b *badInput) truststoreOnly() badInputCase {
	return badInputCase{name: "truststore.p12 next to a valid pair", where: "Secret (placeholder)", start: func(t *testing.T) func(t *testing.T) string {
		return func(t *testing.T) string {
			s := b.tlsSecret(biSecrets, "truststore")
			s.Data["truststore.p12"] = []byte("CA certificates only")
			s.Data["truststore.jks"] = []byte("CA certificates only")
			mustCreate(t, b.c, s)
			assertScrubbed(t, b.st, biSecrets, "truststore", false)
			got := getSecret(t, b.c, client.ObjectKeyFromObject(s))
			if string(got.Data["truststore.p12"]) != "CA certificates only" || string(got.Data["truststore.jks"]) != "CA certificates only" {
				t.Errorf("truststores were not kept: %v", got.Data)
			}
			return "admitted; tls.key moved to Vault, truststore.p12/truststore.jks kept (CA only)"
		}
	}}
}

func (b *badInput) certWithoutKey() badInputCase {
	return badInputCase{name: "certificate without key", where: "nothing (no key to protect)", start: func(t *testing.T) func(t *testing.T) string {
		s := b.tlsSecret(biSecrets, "cert-no-key")
		s.Data["tls.key"] = []byte{}
		mustCreate(t, b.c, s)
		return func(t *testing.T) string {
			// Checked after the earlier cases ran: the watcher had time to (wrongly) act.
			b.assertUntouched(t, biSecrets, "cert-no-key", []byte{})
			return "admitted unchanged; the webhook is not called (no key material), the watcher leaves it, no custody record"
		}
	}}
}

// padCA fills ca.crt with copies of the certificate until the Secret's data
// reaches total bytes.
func (b *badInput) padCA(s *corev1.Secret, total int) {
	var ca []byte
	size := len(s.Data["tls.key"]) + len(s.Data["tls.crt"])
	for size+len(ca)+len(b.certPEM) <= total {
		ca = append(ca, b.certPEM...)
	}
	s.Data["ca.crt"] = ca
}

// valuesSize is what the apiserver (and the scrub webhook) hold against the
// 1 MiB limit: the values only.
func valuesSize(s *corev1.Secret) int {
	n := 0
	for _, v := range s.Data {
		n += len(v)
	}
	return n
}

func dataSize(s *corev1.Secret) int {
	n := 0
	for k, v := range s.Data {
		n += len(k) + len(v)
	}
	return n
}

func (b *badInput) nearOneMiB() badInputCase {
	return badInputCase{name: "Secret near 1 MiB", where: "Secret (placeholder)", start: func(t *testing.T) func(t *testing.T) string {
		return func(t *testing.T) string {
			s := b.tlsSecret(biSecrets, "huge")
			b.padCA(s, 1000*1024)
			size := dataSize(s)
			mustCreate(t, b.c, s)
			_, rec := assertScrubbed(t, b.st, biSecrets, "huge", false)
			vc, err := b.st.Vault.RootClient()
			must(t, err)
			kv, err := vc.KVv2(framework.VaultCustodyMount).Get(b.ctx, framework.VaultCustodyPrefix+"/"+biSecrets+"/huge")
			must(t, err)
			if ca, _ := kv.Data["ca.crt"].(string); ca != string(s.Data["ca.crt"]) {
				t.Errorf("custody record ca.crt has %d bytes, want the %d written", len(ca), len(s.Data["ca.crt"]))
			}
			return fmt.Sprintf("admitted; %d bytes of data, key moved to custody version %d, ca.crt kept in the Secret and in the record", size, rec.Version)
		}
	}}
}

// overOneMiBValue: one entry (ca.crt) alone is over 1 MiB. The scrub
// webhook refuses it before writing anything to Vault.
func (b *badInput) overOneMiBValue() badInputCase {
	return badInputCase{name: "Secret over 1 MiB (one entry over 1 MiB)", where: "admission error (scrub webhook)", start: func(t *testing.T) func(t *testing.T) string {
		return func(t *testing.T) string {
			s := b.tlsSecret(biSecrets, "too-huge")
			b.padCA(s, 1100*1024)
			err := b.c.Create(b.ctx, s)
			want := fmt.Sprintf("keyward: secret bad/too-huge not admitted: planning custody for secret bad/too-huge: secret data exceeds the Kubernetes limit of 1 MiB: data is %d bytes", valuesSize(s))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("creating a %d-byte secret: error = %v, want the webhook's denial %q", dataSize(s), err, want)
			}
			b.assertNoSecret(t, biSecrets, "too-huge")
			b.assertNoRecord(t, biSecrets, "too-huge")
			return err.Error()
		}
	}}
}

// overOneMiBTotal: every entry is small enough for Vault but the Secret is
// over the apiserver's 1 MiB limit. The scrub webhook runs before the
// apiserver's validation, so it checks the limit itself and writes nothing.
func (b *badInput) overOneMiBTotal() badInputCase {
	return badInputCase{name: "Secret over 1 MiB (in total)", where: "admission error (scrub webhook)", start: func(t *testing.T) func(t *testing.T) string {
		return func(t *testing.T) string {
			s := b.tlsSecret(biSecrets, "too-big")
			b.padCA(s, 600*1024)
			s.Data["extra"] = s.Data["ca.crt"]
			err := b.c.Create(b.ctx, s)
			want := fmt.Sprintf("keyward: secret bad/too-big not admitted: planning custody for secret bad/too-big: secret data exceeds the Kubernetes limit of 1 MiB: data is %d bytes", valuesSize(s))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("creating a %d-byte secret: error = %v, want the webhook's denial %q", dataSize(s), err, want)
			}
			b.assertNoSecret(t, biSecrets, "too-big")
			b.assertNoRecord(t, biSecrets, "too-big")
			return err.Error()
		}
	}}
}

func (b *badInput) opaqueUnannotated() badInputCase {
	return badInputCase{name: "non-TLS Secret (Opaque, no cert-manager annotation)", where: "nothing (ignored)", start: func(t *testing.T) func(t *testing.T) string {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: biSecrets, Name: "opaque-plain"},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{"tls.key": bytes.Clone(b.keyPEM), "password": []byte("hunter2")},
		}
		mustCreate(t, b.c, s)
		return func(t *testing.T) string {
			b.assertUntouched(t, biSecrets, "opaque-plain", b.keyPEM)
			return "admitted unchanged; not kubernetes.io/tls, so neither webhook nor watcher looks at it"
		}
	}}
}

func (b *badInput) tlsNotCertManager() badInputCase {
	return badInputCase{name: "TLS Secret not written by cert-manager", where: "nothing (ignored)", start: func(t *testing.T) func(t *testing.T) string {
		s := b.tlsSecret(biSecrets, "hand-made")
		delete(s.Annotations, scrubber.AnnotationCertificateName)
		mustCreate(t, b.c, s)
		return func(t *testing.T) string {
			b.assertUntouched(t, biSecrets, "hand-made", b.keyPEM)
			return "admitted unchanged; no cert-manager.io/certificate-name annotation, out of custody scope by design"
		}
	}}
}

// --- issuers

func (b *badInput) crdRejectsServer() badInputCase {
	return badInputCase{name: "issuer server that is not a URL", where: "admission error (CRD validation)", start: func(t *testing.T) func(t *testing.T) string {
		return func(t *testing.T) string {
			iss := keywardClusterIssuer(b.st, "bad-url")
			iss.Spec.Server = "vault.example.com:8200"
			err := b.c.Create(b.ctx, iss)
			want := `spec.server: Invalid value: "vault.example.com:8200": spec.server in body should match '^https?://[^/?#\s]+/?$'`
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
				t.Fatalf("create: error = %v, want Invalid containing %q", err, want)
			}
			return err.Error()
		}
	}}
}

// issuerNotReady: a VaultClusterIssuer that must become Ready=False with
// reason and a message containing want, and say so in an Event.
func (b *badInput) issuerNotReady(name, issuerName string, mutate func(*v1alpha1.VaultIssuerSpec), reason, want string) badInputCase {
	return badInputCase{name: name, where: "VaultClusterIssuer Ready condition + Warning Event", start: func(t *testing.T) func(t *testing.T) string {
		iss := keywardClusterIssuer(b.st, issuerName)
		mutate(&iss.Spec)
		mustCreate(t, b.c, iss)
		return func(t *testing.T) string { return b.waitIssuerNotReady(t, iss, reason, want) }
	}}
}

func (b *badInput) waitIssuerNotReady(t *testing.T, iss *v1alpha1.VaultClusterIssuer, reason, want string) string {
	t.Helper()
	var cond *metav1.Condition
	waitFor(t, 45*time.Second, "VaultClusterIssuer "+iss.Name+" Ready=False/"+reason, func(ctx context.Context) (bool, error) {
		if err := b.c.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return false, err
		}
		cond = meta.FindStatusCondition(iss.Status.Conditions, v1alpha1.ConditionReady)
		return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == reason && cond.ObservedGeneration == iss.Generation, nil
	})
	if !strings.Contains(cond.Message, want) {
		t.Errorf("VaultClusterIssuer %s: Ready message %q does not contain %q", iss.Name, cond.Message, want)
	}
	ev := b.waitEvent(t, "", "VaultClusterIssuer", iss.Name, reason)
	if ev.Type != corev1.EventTypeWarning || ev.Note != cond.Message {
		t.Errorf("VaultClusterIssuer %s: event %s/%s %q, want Warning with the condition's message", iss.Name, ev.Type, ev.Reason, ev.Note)
	}
	return fmt.Sprintf("Ready=False reason=%s message=%q", cond.Reason, cond.Message)
}

// waitEvent waits for an event (core or events.k8s.io) about an object with
// the given reason. ns "" means the default namespace (cluster-scoped objects).
func (b *badInput) waitEvent(t *testing.T, ns, kind, name, reason string) eventsv1.Event {
	t.Helper()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	var found eventsv1.Event
	waitFor(t, 30*time.Second, fmt.Sprintf("event %s about %s %s", reason, kind, name), func(ctx context.Context) (bool, error) {
		ev, ok, err := b.findEvent(ctx, ns, kind, name, reason)
		found = ev
		return ok, err
	})
	return found
}

func (b *badInput) findEvent(ctx context.Context, ns, kind, name, reason string) (eventsv1.Event, bool, error) {
	list, err := b.st.Kubernetes.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return eventsv1.Event{}, false, err
	}
	for _, ev := range list.Items {
		if ev.Regarding.Kind == kind && ev.Regarding.Name == name && ev.Reason == reason {
			return ev, true, nil
		}
	}
	return eventsv1.Event{}, false, nil
}

func (b *badInput) wrongCAIssuer() badInputCase {
	return badInputCase{name: "CA bundle that does not sign Vault's certificate", where: "VaultClusterIssuer Ready condition + Warning Event", start: func(t *testing.T) func(t *testing.T) string {
		// A TLS server standing in for Vault, with a certificate the bundle does not trust.
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
		t.Cleanup(srv.Close)
		iss := keywardClusterIssuer(b.st, "bad-ca-trust")
		iss.Spec.Server = srv.URL
		iss.Spec.CABundle = b.st.Vault.RootCAPEM
		mustCreate(t, b.c, iss)
		return func(t *testing.T) string {
			return b.waitIssuerNotReady(t, iss, issuer.ReasonTLSUntrusted, "tls: failed to verify certificate: x509: certificate signed by unknown authority")
		}
	}}
}

// appRoleIssuer: AppRole auth whose secret ID was destroyed in Vault
// (destroyed) or whose Secret does not exist.
func (b *badInput) appRoleIssuer(name, issuerName string, destroyed bool, reason, want string) badInputCase {
	return badInputCase{name: name, where: "VaultClusterIssuer Ready condition + Warning Event", start: func(t *testing.T) func(t *testing.T) string {
		roleID, secretID, err := b.st.Vault.AppRoleCredentials(b.ctx, "keyward-issuer")
		must(t, err)
		secretName := issuerName + "-secret-id"
		if destroyed {
			vc, err := b.st.Vault.RootClient()
			must(t, err)
			_, err = vc.Logical().WriteWithContext(b.ctx, "auth/"+framework.VaultAppRoleMount+"/role/keyward-issuer/secret-id/destroy", map[string]any{"secret_id": secretID})
			must(t, err)
			mustCreate(t, b.c, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: framework.KeywardNamespace, Name: secretName},
				Data:       map[string][]byte{"secretId": []byte(secretID)},
			})
		}
		iss := keywardClusterIssuer(b.st, issuerName)
		iss.Spec.Auth = v1alpha1.VaultAuth{AppRole: &v1alpha1.AppRoleAuth{
			Path: framework.VaultAppRoleMount, RoleID: roleID,
			SecretRef: v1alpha1.SecretKeySelector{Name: secretName, Key: "secretId"},
		}}
		mustCreate(t, b.c, iss)
		return func(t *testing.T) string { return b.waitIssuerNotReady(t, iss, reason, want) }
	}}
}

// --- requests

func (b *badInput) issuerRef(name string) cmmeta.IssuerReference {
	return cmmeta.IssuerReference{Group: v1alpha1.GroupName, Kind: v1alpha1.VaultClusterIssuerKind, Name: name}
}

// requestOf returns the newest CertificateRequest of a Certificate, or nil.
func (b *badInput) requestOf(ctx context.Context, crt *cmapi.Certificate) (*cmapi.CertificateRequest, error) {
	var list cmapi.CertificateRequestList
	if err := b.c.List(ctx, &list, client.InNamespace(crt.Namespace)); err != nil {
		return nil, err
	}
	var newest *cmapi.CertificateRequest
	for i := range list.Items {
		cr := &list.Items[i]
		if cr.Annotations[cmapi.CertificateNameKey] != crt.Name {
			continue
		}
		if newest == nil || cr.CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = cr
		}
	}
	return newest, nil
}

// failedCertificate: a Certificate whose request fails permanently; the
// request's Ready condition, its Event and the Certificate's Issuing
// condition all carry the reason.
func (b *badInput) failedCertificate(name, crtName, issuerName, dns, want, eventReason string) badInputCase {
	return badInputCase{name: name, where: "CertificateRequest Ready=False/Failed + Warning Event; Certificate Issuing=False/Failed", start: func(t *testing.T) func(t *testing.T) string {
		crt := newCertificate(biCerts, crtName, b.issuerRef(issuerName), dns)
		mustCreate(t, b.c, crt)
		return func(t *testing.T) string {
			var cr *cmapi.CertificateRequest
			waitFor(t, 45*time.Second, "request of "+crtName+" failed", func(ctx context.Context) (bool, error) {
				var err error
				cr, err = b.requestOf(ctx, crt)
				return cr != nil && apiutil.CertificateRequestReadyReason(cr) == cmapi.CertificateRequestReasonFailed, err
			})
			ready := readyCondition(cr)
			if ready.Message != want || cr.Status.FailureTime == nil || len(cr.Status.Certificate) != 0 {
				t.Errorf("CertificateRequest %s: Ready %s/%q failureTime %v, want Failed %q with a failure time and no certificate", cr.Name, ready.Reason, ready.Message, cr.Status.FailureTime, want)
			}
			ev := b.waitEvent(t, biCerts, "CertificateRequest", cr.Name, eventReason)
			if ev.Type != corev1.EventTypeWarning || ev.Note != want {
				t.Errorf("CertificateRequest %s: event %s %q, want Warning %q", cr.Name, ev.Type, ev.Note, want)
			}
			var issuing *cmapi.CertificateCondition
			waitFor(t, 30*time.Second, "Certificate "+crtName+" Issuing=False", func(ctx context.Context) (bool, error) {
				if err := b.c.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
					return false, err
				}
				issuing = apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionIssuing)
				return issuing != nil && issuing.Status == cmmeta.ConditionFalse, nil
			})
			wantIssuing := "The certificate request has failed to complete and will be retried: " + want
			if issuing.Reason != "Failed" || issuing.Message != wantIssuing {
				t.Errorf("Certificate %s: Issuing %s/%q, want Failed/%q", crtName, issuing.Reason, issuing.Message, wantIssuing)
			}
			return fmt.Sprintf("CertificateRequest Ready=False reason=Failed message=%q; Event %s; Certificate Issuing=False reason=%s message=%q", ready.Message, ev.Reason, issuing.Reason, issuing.Message)
		}
	}}
}

func (b *badInput) weakRSARequest() badInputCase {
	return badInputCase{name: "CSR with an RSA 1024 key", where: "CertificateRequest Ready=False/Failed + Warning Event", start: func(t *testing.T) func(t *testing.T) string {
		key, err := rsa.GenerateKey(rand.Reader, 1024)
		must(t, err)
		cr := &cmapi.CertificateRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: biCerts, Name: "weak-rsa"},
			Spec: cmapi.CertificateRequestSpec{Request: newCSR(t, crypto.Signer(key), "weak.example.com"), IssuerRef: b.issuerRef("vault"),
				Duration: &metav1.Duration{Duration: time.Hour}},
		}
		mustCreate(t, b.c, cr)
		return func(t *testing.T) string {
			cr = waitRequestFinished(t, b.c, client.ObjectKeyFromObject(cr))
			ready := readyCondition(cr)
			want := `policy rule "rsa-min-bits": RSA key is 1024 bits, minimum 2048`
			if ready.Reason != cmapi.CertificateRequestReasonFailed || ready.Message != want || cr.Status.FailureTime == nil {
				t.Errorf("Ready %s/%q failureTime %v, want Failed %q", ready.Reason, ready.Message, cr.Status.FailureTime, want)
			}
			ev := b.waitEvent(t, biCerts, "CertificateRequest", cr.Name, issuer.ReasonPolicyViolation)
			if ev.Note != want {
				t.Errorf("event note %q, want %q", ev.Note, want)
			}
			return fmt.Sprintf("Ready=False reason=Failed message=%q; Warning Event %s", ready.Message, ev.Reason)
		}
	}}
}

func (b *badInput) missingIssuer() badInputCase {
	return badInputCase{name: "Certificate naming a VaultClusterIssuer that does not exist", where: "CertificateRequest Ready=False/Pending", start: func(t *testing.T) func(t *testing.T) string {
		crt := newCertificate(biCerts, "no-issuer", b.issuerRef("missing"), "no-issuer.example.com")
		mustCreate(t, b.c, crt)
		return func(t *testing.T) string {
			var cr *cmapi.CertificateRequest
			want := "VaultClusterIssuer missing not found"
			waitFor(t, 30*time.Second, "request of no-issuer pending on the missing issuer", func(ctx context.Context) (bool, error) {
				var err error
				cr, err = b.requestOf(ctx, crt)
				return cr != nil && strings.Contains(readyCondition(cr).Message, want), err
			})
			ready := readyCondition(cr)
			if ready.Reason != cmapi.CertificateRequestReasonPending || cr.Status.FailureTime != nil {
				t.Errorf("Ready %s/%q failureTime %v, want Pending (retried when the issuer appears)", ready.Reason, ready.Message, cr.Status.FailureTime)
			}
			return fmt.Sprintf("Ready=False reason=%s message=%q", ready.Reason, ready.Message)
		}
	}}
}

// --- Certificates in custody

func (b *badInput) keystoreCertificate() badInputCase {
	return badInputCase{name: "Certificate with a PKCS#12 keystore", where: "cert-manager controller log (Certificate stays Issuing)", start: func(t *testing.T) func(t *testing.T) string {
		crt := newCertificate(biCerts, "keystore", b.issuerRef("vault"), "keystore.example.com")
		crt.Spec.Keystores = &cmapi.CertificateKeystores{PKCS12: &cmapi.PKCS12Keystore{Create: true, Password: ptr.To("changeit")}}
		mustCreate(t, b.c, crt)
		return func(t *testing.T) string {
			want := `failed to apply secret certs/keystore-tls: admission webhook "secret-scrub.keyward.io" denied the request: keyward: secret certs/keystore-tls not admitted: planning custody for secret certs/keystore-tls: keystore.p12: key-bearing output formats are not supported under key custody: remove additionalOutputFormats and keystores from Certificate keystore and build them from the custody record`
			var logged string
			waitFor(t, 45*time.Second, "cert-manager to log the denied keystore write", func(context.Context) (bool, error) {
				logged = logErrorContaining(t, filepath.Join(b.st.Dir, "cert-manager.log"), "secret certs/keystore-tls not admitted")
				return logged != "", nil
			})
			if logged != want {
				t.Errorf("cert-manager logged %q, want %q", logged, want)
			}
			b.assertNoSecret(t, biCerts, "keystore-tls")
			b.assertNoRecord(t, biCerts, "keystore-tls")
			if err := b.c.Get(b.ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
				t.Fatal(err)
			}
			if isReady(crt) {
				t.Errorf("Certificate keystore is Ready without a Secret")
			}
			issuing := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionIssuing)
			seen := "Certificate conditions:"
			for _, c := range crt.Status.Conditions {
				seen += fmt.Sprintf(" %s=%s/%s %q;", c.Type, c.Status, c.Reason, c.Message)
			}
			if issuing == nil || issuing.Status != cmmeta.ConditionTrue {
				t.Errorf("Certificate keystore: want Issuing=True while cert-manager retries the denied write; %s", seen)
			}
			// The scrub webhook says why on the Certificate: a CustodyRejected
			// event (recorded asynchronously, so look for a few seconds).
			told := ""
			deadline := time.Now().Add(10 * time.Second)
			for told == "" && time.Now().Before(deadline) {
				list, err := b.st.Kubernetes.EventsV1().Events(biCerts).List(b.ctx, metav1.ListOptions{})
				must(t, err)
				for _, ev := range list.Items {
					if ev.Regarding.Kind == "Certificate" && ev.Regarding.Name == "keystore" && ev.Reason == scrubber.ReasonCustodyRejected &&
						strings.Contains(ev.Note, "key-bearing output formats are not supported under key custody") {
						told = fmt.Sprintf(" event %s %s %q;", ev.Type, ev.Reason, ev.Note)
					}
				}
				if told == "" {
					time.Sleep(200 * time.Millisecond)
				}
			}
			if told == "" {
				t.Errorf("no CustodyRejected event on Certificate keystore naming the keystore; %s", seen)
			}
			seen += told
			if crt.Status.NextPrivateKeySecretName != nil {
				nk := &corev1.Secret{}
				if err := b.c.Get(b.ctx, client.ObjectKey{Namespace: biCerts, Name: *crt.Status.NextPrivateKeySecretName}, nk); err == nil && framework.HoldsPEMPrivateKey(nk.Data["tls.key"]) {
					t.Logf("WEAKNESS: while the keystore write is denied, cert-manager's next-private-key Secret %s keeps the private key in etcd (it is retried, not deleted)", nk.Name)
				}
			}
			return want + " | " + seen
		}
	}}
}

// logErrorContaining returns the "error" field of the first JSON log line
// of path whose error contains s.
func logErrorContaining(t *testing.T, path, s string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		var entry struct {
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && strings.Contains(entry.Error, s) {
			return entry.Error
		}
	}
	return ""
}

func (b *badInput) opaqueTarget() badInputCase {
	return badInputCase{name: "Certificate whose target Secret is Opaque", where: "admission error to cert-manager + Warning Event CustodyRejected on the Certificate", start: func(t *testing.T) func(t *testing.T) string {
		mustCreate(t, b.c, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: biCerts, Name: "opaque-tls"},
			Type:       corev1.SecretTypeOpaque,
		})
		crt := newCertificate(biCerts, "opaque", b.issuerRef("vault"), "opaque.example.com")
		crt.Spec.SecretName = "opaque-tls"
		mustCreate(t, b.c, crt)
		return func(t *testing.T) string {
			// cert-manager keeps the existing type, so it writes the key into
			// the Opaque Secret: the scrub webhook refuses the write.
			ev := b.waitEvent(t, biCerts, "Certificate", "opaque", scrubber.ReasonCustodyRejected)
			want := "a Secret of type Opaque cannot be a custody placeholder: delete it so that cert-manager creates it again as kubernetes.io/tls for Certificate opaque"
			if !strings.Contains(ev.Note, want) {
				t.Fatalf("CustodyRejected event %q, want it to say %q", ev.Note, want)
			}
			s := getSecret(t, b.c, client.ObjectKey{Namespace: biCerts, Name: "opaque-tls"})
			if len(s.Data) != 0 {
				t.Fatalf("the refused Opaque Secret holds %v", keysOf(s.Data))
			}
			b.assertNoRecord(t, biCerts, "opaque-tls")
			// The fix the message names: cert-manager creates the Secret
			// again as kubernetes.io/tls, and custody takes the key.
			if err := b.c.Delete(b.ctx, s); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			waitCertificateReady(t, b.c, client.ObjectKeyFromObject(crt), 60*time.Second)
			if got := getSecret(t, b.c, client.ObjectKey{Namespace: biCerts, Name: "opaque-tls"}); got.Type != corev1.SecretTypeTLS {
				t.Fatalf("re-created Secret has type %q, want kubernetes.io/tls", got.Type)
			}
			assertScrubbed(t, b.st, biCerts, "opaque-tls", false)
			return fmt.Sprintf("denied (the key never reaches etcd): `%s`; after the Opaque Secret was deleted, cert-manager created it as kubernetes.io/tls and the key moved to custody (Ready %s later)",
				ev.Note, time.Since(start).Round(time.Second))
		}
	}}
}

func (b *badInput) rotationNever() badInputCase {
	return badInputCase{name: "Certificate with rotationPolicy Never", where: "Warning Event RotationPolicyNeverIgnored on the Certificate", start: func(t *testing.T) func(t *testing.T) string {
		crt := newCertificate(biCerts, "never", b.issuerRef("vault"), "never.example.com")
		crt.Spec.PrivateKey.RotationPolicy = cmapi.RotationPolicyNever
		mustCreate(t, b.c, crt)
		return func(t *testing.T) string {
			waitCertificateReady(t, b.c, client.ObjectKeyFromObject(crt), 45*time.Second)
			assertScrubbed(t, b.st, biCerts, "never-tls", false)
			ev := b.waitEvent(t, biCerts, "Certificate", "never", scrubber.ReasonRotationPolicyNeverIgnored)
			want := "privateKey.rotationPolicy Never has no effect under key custody: the key of secret never-tls is held in Vault, so every issuance uses a fresh key"
			if ev.Type != corev1.EventTypeWarning || ev.Note != want {
				t.Errorf("event %s %q, want Warning %q", ev.Type, ev.Note, want)
			}
			return fmt.Sprintf("Warning %s: %s", ev.Reason, ev.Note)
		}
	}}
}

func (b *badInput) sharedSecretName() badInputCase {
	return badInputCase{name: "two Certificates sharing a Secret name", where: "second Certificate's Ready condition (IncorrectCertificate)", start: func(t *testing.T) func(t *testing.T) string {
		first := newCertificate(biCerts, "dup-a", b.issuerRef("vault"), "dup-a.example.com")
		first.Spec.SecretName = "shared-tls"
		second := newCertificate(biCerts, "dup-b", b.issuerRef("vault"), "dup-b.example.com")
		second.Spec.SecretName = "shared-tls"
		mustCreate(t, b.c, first, second)
		return func(t *testing.T) string {
			waitCertificateReady(t, b.c, client.ObjectKeyFromObject(first), 45*time.Second)
			serial, _ := assertScrubbed(t, b.st, biCerts, "shared-tls", false)
			var ready *cmapi.CertificateCondition
			waitFor(t, 30*time.Second, "dup-b's Ready condition", func(ctx context.Context) (bool, error) {
				if err := b.c.Get(ctx, client.ObjectKeyFromObject(second), second); err != nil {
					return false, err
				}
				ready = apiutil.GetCertificateCondition(second, cmapi.CertificateConditionReady)
				return ready != nil && ready.Status == cmmeta.ConditionFalse && ready.Reason == "IncorrectCertificate", nil
			})
			if second.Status.Revision != nil {
				t.Errorf("dup-b was issued (revision %d): both Certificates write shared-tls", *second.Status.Revision)
			}
			if s2, _ := assertScrubbed(t, b.st, biCerts, "shared-tls", false); s2 != serial {
				t.Errorf("shared-tls was re-issued (serial %s → %s): the duplicates fight", serial, s2)
			}
			// cert-manager's own reason, as without key custody (the guard
			// rewrites the MissingData that the empty tls.key causes).
			if !strings.Contains(ready.Message, `Secret was issued for Certificate "dup-a"`) {
				t.Errorf("dup-b Ready=False/%s %q: want the message naming dup-a", ready.Reason, ready.Message)
			}
			return fmt.Sprintf("dup-a Ready, owns shared-tls; dup-b never issued, Ready=False reason=%s message=%q", ready.Reason, ready.Message)
		}
	}}
}

func (b *badInput) tamperedRecord() badInputCase {
	return badInputCase{name: "custody record tampered (fingerprint mismatch)", where: "guard Event CustodyGuardPassed (CustodyRecordMismatch) on the Certificate and one re-issue at cert-manager's next look", start: func(t *testing.T) func(t *testing.T) string {
		crt := newCertificate(biCerts, "tamper", b.issuerRef("vault"), "tamper.example.com")
		mustCreate(t, b.c, crt)
		return func(t *testing.T) string {
			waitCertificateReady(t, b.c, client.ObjectKeyFromObject(crt), 45*time.Second)
			waitSettled(t, b.st, crt)
			serial, _ := assertScrubbed(t, b.st, biCerts, "tamper-tls", false)
			before := revision(t, b.c, crt)
			sec := getSecret(t, b.c, client.ObjectKey{Namespace: biCerts, Name: "tamper-tls"})
			fp := sec.Annotations[custody.AnnotationKeySHA256]
			fake := strings.Repeat("0", 64)

			// Tampering in Vault can only add a version (KV v2 versions are
			// immutable): root writes the same key and certificate again with
			// a description that names another key.
			vc, err := b.st.Vault.RootClient()
			must(t, err)
			kv := vc.KVv2(framework.VaultCustodyMount)
			recPath := framework.VaultCustodyPrefix + "/" + biCerts + "/tamper-tls"
			cur, err := kv.Get(b.ctx, recPath)
			must(t, err)
			if got := describedKey(cur.Data); got != fp {
				t.Fatalf("custody record describes key %q, the Secret names %s", got, fp)
			}
			desc := map[string]any{}
			for k, v := range cur.Data[vaultkv.DataDescription].(map[string]any) {
				if !strings.HasPrefix(k, "key_sha256=") {
					desc[k] = v
				}
			}
			desc["key_sha256="+fake] = ""
			cur.Data[vaultkv.DataDescription] = desc
			_, err = kv.Put(b.ctx, recPath, cur.Data)
			must(t, err)

			// The audit lists records (one Vault LIST per namespace) and does
			// not read a listed record's description, so it does not see this.
			// The next time cert-manager looks at the Certificate (any change
			// of the Secret), the guard finds the record does not describe
			// tls.crt and lets cert-manager re-issue. Its metadata cache may
			// answer from before the tampering for up to 30 s, so keep
			// nudging until it does.
			deadline := time.Now().Add(60 * time.Second)
			for nudge := 1; revision(t, b.c, crt) == before; nudge++ {
				if time.Now().After(deadline) {
					t.Fatalf("no re-issue of tamper within 60s of the record mismatch")
				}
				s := getSecret(t, b.c, client.ObjectKey{Namespace: biCerts, Name: "tamper-tls"})
				if s.Labels == nil {
					s.Labels = map[string]string{}
				}
				s.Labels["e2e-nudge"] = fmt.Sprint(nudge)
				if err := b.c.Update(b.ctx, s); err != nil && !apierrors.IsConflict(err) {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Second) // polling interval, not an assertion
			}
			waitCertificateReady(t, b.c, client.ObjectKeyFromObject(crt), 30*time.Second)
			waitSettled(t, b.st, crt)
			newSerial, _ := assertScrubbed(t, b.st, biCerts, "tamper-tls", false)
			if newSerial == serial {
				t.Errorf("serial unchanged after the re-issue")
			}
			cur, err = kv.Get(b.ctx, recPath)
			must(t, err)
			sec = getSecret(t, b.c, client.ObjectKey{Namespace: biCerts, Name: "tamper-tls"})
			if got := describedKey(cur.Data); got != sec.Annotations[custody.AnnotationKeySHA256] {
				t.Errorf("after the re-issue the record describes key %q, the Secret names %s", got, sec.Annotations[custody.AnnotationKeySHA256])
			}
			// The Certificate has other CustodyGuardPassed events (its first
			// issuance passed with SecretNotFound): find the mismatch one.
			want := guard.DecisionCustodyRecordMismatch + ": key fingerprint annotation differs from the custody record"
			var ev eventsv1.Event
			waitFor(t, 30*time.Second, "the guard's "+guard.DecisionCustodyRecordMismatch+" event on Certificate tamper", func(ctx context.Context) (bool, error) {
				list, err := b.st.Kubernetes.EventsV1().Events(biCerts).List(ctx, metav1.ListOptions{})
				if err != nil {
					return false, err
				}
				for _, e := range list.Items {
					if e.Regarding.Kind == "Certificate" && e.Regarding.Name == "tamper" && e.Reason == guard.EventReasonPassed && e.Note == want {
						ev = e
						return true, nil
					}
				}
				return false, nil
			})
			return fmt.Sprintf("%s %s: %s; one re-issue (revision %d → %d) repairs the record", ev.Type, ev.Reason, ev.Note, before, revision(t, b.c, crt))
		}
	}}
}

// describedKey is the key fingerprint a custody record version's
// description (vaultkv.DataDescription) names, from a root read of its data.
func describedKey(data map[string]any) string {
	desc, _ := data[vaultkv.DataDescription].(map[string]any)
	for k := range desc {
		if fp, ok := strings.CutPrefix(k, "key_sha256="); ok {
			return fp
		}
	}
	return ""
}

// rejectedByWatcher: an unusable Secret that was stored before its namespace
// opted in; the watcher cannot move it and says so on the Secret.
func (b *badInput) rejectedByWatcher() badInputCase {
	return badInputCase{name: "bad Secret stored before the namespace opted in", where: "Warning Event CustodyRejected on the Secret", start: func(t *testing.T) func(t *testing.T) string {
		s := b.tlsSecret(biLate, "mismatch")
		other, _ := selfSignedPair(t, "other.example.com")
		s.Data["tls.key"] = other
		mustCreate(t, b.c, s)
		return func(t *testing.T) string {
			custodyNamespace(t, b.st, biLate, nil)
			ev := b.waitEvent(t, biLate, "Secret", "mismatch", scrubber.ReasonCustodyRejected)
			want := "planning custody for secret late/mismatch: tls.key: private key does not match the certificate's public key: serial "
			if ev.Type != corev1.EventTypeWarning || !strings.HasPrefix(ev.Note, want) {
				t.Errorf("event %s %q, want Warning starting %q", ev.Type, ev.Note, want)
			}
			// The key cannot be moved: it stays where it was, and is reported.
			b.assertUntouched(t, biLate, "mismatch", other)
			return fmt.Sprintf("Warning %s: %s (the Secret keeps its key)", ev.Reason, ev.Note)
		}
	}}
}

// pauseVault freezes Vault for the duration of f, so that a scrub in
// flight waits on it; Vault is resumed however f ends.
func (b *badInput) pauseVault(t *testing.T, f func()) {
	t.Helper()
	if err := b.st.Vault.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.st.Vault.Resume(); err != nil {
			t.Errorf("resuming vault: %v", err)
		}
	}()
	f()
}

// loudLines returns Keyward's error-level log lines that mention s.
func (b *badInput) loudLines(t *testing.T, s string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.st.Dir, "keyward.log"))
	must(t, err)
	var loud []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, `"level":"error"`) && strings.Contains(line, s) {
			loud = append(loud, line)
		}
	}
	return loud
}

// assertQuietAbout fails if Keyward logs an error about s within a short
// grace period (errors are logged right after the failing call returns).
func (b *badInput) assertQuietAbout(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if loud := b.loudLines(t, s); len(loud) > 0 {
			t.Errorf("Keyward logged %d error(s) about %s, want none:\n%s", len(loud), s, strings.Join(loud, "\n"))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scrubCount reads keyward_scrub_total{path, result}.
func (b *badInput) scrubCount(t *testing.T, path, result string) float64 {
	t.Helper()
	mfs, err := b.st.Registry.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "keyward_scrub_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["path"] == path && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// deletedDuringWebhookScrub: a Secret is deleted while the scrub webhook
// waits on Vault for its update.
func (b *badInput) deletedDuringWebhookScrub() badInputCase {
	return badInputCase{name: "Secret deleted while the webhook scrubs it", where: "the writer's error (NotFound); Keyward log quiet", start: func(t *testing.T) func(t *testing.T) string {
		s := b.tlsSecret(biSecrets, "racing")
		mustCreate(t, b.c, s)
		return func(t *testing.T) string {
			assertScrubbed(t, b.st, biSecrets, "racing", false)
			newKey, newCert := selfSignedPair(t, "racing.example.com")
			var updateErr error
			b.pauseVault(t, func() {
				cur := getSecret(t, b.c, client.ObjectKeyFromObject(s))
				cur.Data["tls.key"], cur.Data["tls.crt"] = newKey, newCert
				done := make(chan error, 1)
				go func() { done <- b.c.Update(context.Background(), cur) }()
				// Let the update reach the webhook, which then waits on Vault
				// (this widens the race; it asserts nothing).
				time.Sleep(time.Second)
				if err := b.c.Delete(b.ctx, cur); err != nil {
					t.Errorf("deleting secret mid-scrub: %v", err)
				}
				_ = b.st.Vault.Resume() // pauseVault resumes again: a no-op
				updateErr = <-done
			})
			if !apierrors.IsNotFound(updateErr) && !apierrors.IsConflict(updateErr) {
				t.Errorf("update of the deleted secret: error = %v, want NotFound or Conflict", updateErr)
			}
			b.assertNoSecret(t, biSecrets, "racing")
			rec, ok := readCustody(t, b.st, biSecrets, "racing")
			if !ok {
				t.Fatalf("no custody record for bad/racing")
			}
			switch {
			case bytes.Equal(rec.Cert, newCert):
				assertKeyMatchesCert(t, rec.Key, newCert)
			case bytes.Equal(rec.Cert, b.certPEM):
				t.Logf("the webhook did not reach Vault before the delete; the record still holds the first key")
			default:
				t.Errorf("custody record holds neither the first nor the new certificate")
			}
			b.assertQuietAbout(t, "bad/racing")
			return fmt.Sprintf("writer gets %q; custody record version %d holds the key of the update (nothing lost); Keyward logs no error", updateErr, rec.Version)
		}
	}}
}

// deletedDuringWatcherScrub: the watcher is scrubbing a Secret (Vault is
// slow: paused) when the Secret is deleted. Each attempt uses a namespace
// opted in only then; an attempt counts when the watcher reached Vault
// before the delete (it then writes the record).
func (b *badInput) deletedDuringWatcherScrub() badInputCase {
	return badInputCase{name: "Secret deleted while the watcher scrubs it", where: "Keyward log (must stay quiet)", start: func(t *testing.T) func(t *testing.T) string {
		const attempts = 3
		for i := 1; i <= attempts; i++ {
			mustCreate(t, b.c, b.tlsSecret(fmt.Sprintf("%s-%d", biMidScrub, i), "gone"))
		}
		return func(t *testing.T) string {
			for i := 1; i <= attempts; i++ {
				ns := fmt.Sprintf("%s-%d", biMidScrub, i)
				updateErrors := b.scrubCount(t, scrubber.ByWatcher, scrubber.ResultUpdateError)
				b.pauseVault(t, func() {
					custodyNamespace(t, b.st, ns, nil)
					// Let the watcher reach Vault (widens the race; asserts nothing).
					time.Sleep(1500 * time.Millisecond)
					if err := b.c.Delete(b.ctx, b.tlsSecret(ns, "gone")); err != nil {
						t.Fatal(err)
					}
				})
				var rec custodyRecord
				hit := false
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !hit; time.Sleep(100 * time.Millisecond) {
					rec, hit = readCustody(t, b.st, ns, "gone")
				}
				if !hit {
					t.Logf("attempt %d: the watcher did not reach Vault before the delete; trying again", i)
					continue
				}
				assertKeyMatchesCert(t, rec.Key, b.certPEM)
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					if b.scrubCount(t, scrubber.ByWatcher, scrubber.ResultUpdateError) > updateErrors {
						break
					}
				}
				b.assertNoSecret(t, ns, "gone")
				b.assertQuietAbout(t, ns+"/gone")
				msg := fmt.Sprintf("custody record version %d holds the deleted Secret's key (nothing lost)", rec.Version)
				if loud := b.loudLines(t, ns+"/gone"); len(loud) > 0 {
					msg += "; Keyward log: " + loud[0]
				} else {
					msg += "; Keyward logs no error"
				}
				return msg
			}
			t.Fatalf("in %d attempts the watcher never reached Vault before the delete; the race was not exercised", attempts)
			return ""
		}
	}}
}

func (b *badInput) outsideCustody() badInputCase {
	return badInputCase{name: "Secret outside custody namespaces", where: "nothing (untouched by design)", start: func(t *testing.T) func(t *testing.T) string {
		mustCreate(t, b.c, b.tlsSecret(biPlain, "outside"))
		return func(t *testing.T) string {
			// Checked last, after the watcher has proven alive (mid-scrub case).
			b.assertUntouched(t, biPlain, "outside", b.keyPEM)
			return "admitted unchanged, key stays in the Secret; neither webhook (namespaceSelector) nor watcher acts"
		}
	}}
}
