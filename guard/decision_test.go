// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import (
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"reflect"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	"github.com/keyward-io/keyward/custody"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func cond(st *cmapi.CertificateStatus, typ cmapi.CertificateConditionType) *cmapi.CertificateCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == typ {
			return &st.Conditions[i]
		}
	}
	return nil
}

// wantKeptReady asserts Ready was kept True with the old lastTransitionTime.
func wantKeptReady(t *testing.T, f *fix, d Decision) {
	t.Helper()
	c := cond(d.Status, cmapi.CertificateConditionReady)
	if c == nil || c.Status != cmmeta.ConditionTrue || c.Message != ReadyMessage || c.Reason != "Ready" {
		t.Fatalf("Ready = %+v, want True/Ready with the custody message", c)
	}
	old := cond(&f.crt.Status, cmapi.CertificateConditionReady)
	if !c.LastTransitionTime.Equal(old.LastTransitionTime) {
		t.Errorf("Ready lastTransitionTime = %v, want the old %v", c.LastTransitionTime, old.LastTransitionTime)
	}
}

func wantNoIssuing(t *testing.T, _ *fix, d Decision) {
	t.Helper()
	if c := cond(d.Status, cmapi.CertificateConditionIssuing); c != nil {
		t.Fatalf("Issuing = %+v, want no Issuing condition", c)
	}
}

func wantUnchanged(want bool) func(*testing.T, *fix, Decision) {
	return func(t *testing.T, _ *fix, d Decision) {
		t.Helper()
		if d.Unchanged != want {
			t.Fatalf("Unchanged = %v, want %v", d.Unchanged, want)
		}
	}
}

func wantCond(typ cmapi.CertificateConditionType, status cmmeta.ConditionStatus, reason, msgPart string) func(*testing.T, *fix, Decision) {
	return func(t *testing.T, _ *fix, d Decision) {
		t.Helper()
		c := cond(d.Status, typ)
		if c == nil || c.Status != status || c.Reason != reason || !strings.Contains(c.Message, msgPart) {
			t.Fatalf("%s = %+v, want %s/%s with message containing %q", typ, c, status, reason, msgPart)
		}
	}
}

func TestDecideGuard(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	type check = func(*testing.T, *fix, Decision)
	tests := []struct {
		name string
		// key, keyAlg, keySize: the key pair and spec.privateKey (nil: ECDSA P-256).
		key     crypto.Signer
		keyAlg  cmapi.PrivateKeyAlgorithm
		keySize int
		// setup changes the fixture (stored state) before the update is built.
		setup func(t *testing.T, f *fix)
		// update is what cert-manager does to the Certificate.
		update func(f *fix, c *cmapi.Certificate)
		// adjust changes the input after it is built.
		adjust      func(f *fix, in *Input)
		wantOutcome Outcome
		wantReason  string
		checks      []check
	}{
		{
			name:        "trigger MissingData on a consistent custody Secret is vetoed",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantNoIssuing, wantUnchanged(true), func(t *testing.T, f *fix, d Decision) {
				if !reflect.DeepEqual(d.Status.Conditions, f.crt.Status.Conditions) {
					t.Fatalf("conditions = %+v, want the stored ones %+v", d.Status.Conditions, f.crt.Status.Conditions)
				}
			}},
		},
		{
			name:        "readiness MissingData keeps Ready=True with the old lastTransitionTime",
			update:      func(f *fix, c *cmapi.Certificate) { readyRedacted(c, f.now) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			// The first veto stores the Vault message: a real change.
			checks: []check{wantKeptReady, wantNoIssuing, wantUnchanged(false)},
		},
		{
			name: "readiness MissingData once the Vault message is stored changes nothing",
			setup: func(_ *testing.T, f *fix) {
				f.crt.Status.Conditions[0].Message = ReadyMessage
			},
			update:      func(f *fix, c *cmapi.Certificate) { readyRedacted(c, f.now) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantKeptReady, wantUnchanged(true)},
		},
		{
			name: "both transitions in one update are vetoed",
			update: func(f *fix, c *cmapi.Certificate) {
				issuingRedacted(c, f.now)
				readyRedacted(c, f.now)
			},
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantKeptReady, wantNoIssuing},
		},
		{
			name: "InvalidKeyPair is redaction-induced",
			update: func(f *fix, c *cmapi.Certificate) {
				setCond(c, f.now, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, ReasonInvalidKeyPair, msgInvalidKey)
			},
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantNoIssuing},
		},
		{
			name: "key-related SecretMismatch is redaction-induced",
			update: func(f *fix, c *cmapi.Certificate) {
				setCond(c, f.now, cmapi.CertificateConditionReady, cmmeta.ConditionFalse, ReasonSecretMismatch, msgKeyVsCR)
			},
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantKeptReady},
		},
		{
			name: "SecretMismatch about the spec on tls.crt passes untouched",
			update: func(f *fix, c *cmapi.Certificate) {
				setCond(c, f.now, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, ReasonSecretMismatch, msgSpecOnSecret)
			},
			wantOutcome: Pass, wantReason: DecisionNotRedactionRelated,
		},
		{
			name: "manual renewal passes untouched",
			update: func(f *fix, c *cmapi.Certificate) {
				setCond(c, f.now, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "ManuallyTriggered", "Certificate re-issuance manually triggered")
			},
			wantOutcome: Pass, wantReason: DecisionNotRedactionRelated,
		},
		{
			name: "DoesNotExist without the Secret passes untouched",
			update: func(f *fix, c *cmapi.Certificate) {
				setCond(c, f.now, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "DoesNotExist", "Issuing certificate as Secret does not exist")
			},
			adjust:      func(_ *fix, in *Input) { in.Secret = nil },
			wantOutcome: Pass, wantReason: DecisionSecretNotFound,
		},
		{
			// cert-manager's cache lags behind a placeholder that exists
			// (restored by adoption, or an issuance that just completed).
			name: "DoesNotExist while the placeholder exists is dropped",
			update: func(f *fix, c *cmapi.Certificate) {
				setCond(c, f.now, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "DoesNotExist", "Issuing certificate as Secret does not exist")
			},
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{func(t *testing.T, _ *fix, d Decision) {
				if c := cond(d.Status, cmapi.CertificateConditionIssuing); c != nil {
					t.Fatalf("Issuing = %+v, want no Issuing condition", c)
				}
			}},
		},
		{
			name: "DoesNotExist while an expired placeholder exists re-issues as Expired",
			update: func(f *fix, c *cmapi.Certificate) {
				setCond(c, f.now, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "DoesNotExist", "Issuing certificate as Secret does not exist")
			},
			adjust:      func(f *fix, in *Input) { in.Now = f.cert.NotAfter.Add(time.Hour) },
			wantOutcome: PassRewritten, wantReason: "Expired",
			checks: []check{wantCond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "Expired", "expired on")},
		},
		{
			name: "Issuing already True is not a transition",
			setup: func(_ *testing.T, f *fix) {
				setCond(f.crt, f.now.Add(-time.Minute), cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "Renewing", "renewal")
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Pass, wantReason: DecisionNotRedactionRelated,
		},
		{
			name: "a Ready=False/MissingData left behind is put right by the next status write",
			setup: func(_ *testing.T, f *fix) {
				readyRedacted(f.crt, f.now.Add(-time.Minute))
			},
			update: func(f *fix, c *cmapi.Certificate) {
				na := metav1.NewTime(f.cert.NotAfter)
				c.Status.NotAfter = &na
			},
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantUnchanged(false), func(t *testing.T, f *fix, d Decision) {
				c := cond(d.Status, cmapi.CertificateConditionReady)
				if c == nil || c.Status != cmmeta.ConditionTrue || c.Message != ReadyMessage || !c.LastTransitionTime.Time.Equal(f.now) {
					t.Fatalf("Ready = %+v, want True since now", c)
				}
			}},
		},
		{
			name: "the trigger's update also puts a left-behind Ready=False right",
			setup: func(_ *testing.T, f *fix) {
				readyRedacted(f.crt, f.now.Add(-time.Minute))
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantNoIssuing, wantCond(cmapi.CertificateConditionReady, cmmeta.ConditionTrue, "Ready", "held in Vault")},
		},
		{
			name: "a left-behind Ready=False with a manual renewal: the renewal is untouched",
			setup: func(_ *testing.T, f *fix) {
				readyRedacted(f.crt, f.now.Add(-time.Minute))
			},
			update: func(f *fix, c *cmapi.Certificate) {
				setCond(c, f.now, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "ManuallyTriggered", "Certificate re-issuance manually triggered")
			},
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{
				wantCond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "ManuallyTriggered", "manually triggered"),
				wantCond(cmapi.CertificateConditionReady, cmmeta.ConditionTrue, "Ready", "held in Vault"),
			},
		},
		{
			name: "a fresh issuance (Ready False/DoesNotExist to False/MissingData) becomes Ready=True now",
			setup: func(_ *testing.T, f *fix) {
				f.crt.Status.Conditions = nil
				setCond(f.crt, f.now.Add(-time.Hour), cmapi.CertificateConditionReady, cmmeta.ConditionFalse, "DoesNotExist", "Issuing certificate as Secret does not exist")
			},
			update:      func(f *fix, c *cmapi.Certificate) { readyRedacted(c, f.now.Add(-time.Hour)) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{func(t *testing.T, f *fix, d Decision) {
				c := cond(d.Status, cmapi.CertificateConditionReady)
				if c == nil || c.Status != cmmeta.ConditionTrue || c.Message != ReadyMessage || !c.LastTransitionTime.Time.Equal(f.now) || c.ObservedGeneration != 2 {
					t.Fatalf("Ready = %+v, want True since now (%s), observedGeneration 2", c, f.now)
				}
			}},
		},
		{
			name: "a failed issuance's Issuing=False is restored",
			setup: func(_ *testing.T, f *fix) {
				setCond(f.crt, f.now.Add(-time.Hour), cmapi.CertificateConditionIssuing, cmmeta.ConditionFalse, "Failed", "issuer said no")
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantCond(cmapi.CertificateConditionIssuing, cmmeta.ConditionFalse, "Failed", "issuer said no")},
		},
		{
			name:        "Secret not found passes",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.Secret = nil },
			wantOutcome: Pass, wantReason: DecisionSecretNotFound,
		},
		{
			name:        "Secret without the custody label passes",
			setup:       func(_ *testing.T, f *fix) { delete(f.secret.Labels, custody.LabelCustody) },
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Pass, wantReason: DecisionNotInCustody,
		},
		{
			name:        "Secret without the custody path passes",
			setup:       func(_ *testing.T, f *fix) { delete(f.secret.Annotations, custody.AnnotationPath) },
			update:      func(f *fix, c *cmapi.Certificate) { readyRedacted(c, f.now) },
			wantOutcome: Pass, wantReason: DecisionNotInCustody,
		},
		{
			name:        "no custody record passes (cert-manager re-issues)",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.Custody = nil },
			wantOutcome: Pass, wantReason: DecisionCustodyRecordNotFound,
		},
		{
			name:        "custody record for another serial passes",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.Custody.Serial = "1234" },
			wantOutcome: Pass, wantReason: DecisionCustodyRecordMismatch,
		},
		{
			name:        "custody record for another key passes",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.Custody.KeySHA256 = strings.Repeat("ab", 32) },
			wantOutcome: Pass, wantReason: DecisionCustodyRecordMismatch,
		},
		{
			name:        "custody record of another Certificate passes",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.Custody.CertificateName = "other" },
			wantOutcome: Pass, wantReason: DecisionCustodyRecordMismatch,
		},
		{
			name: "tls.crt replaced by a certificate for another key passes",
			setup: func(t *testing.T, f *fix) {
				_, other := testCert(t, testECKey(t, elliptic.P256()), f.crt.Spec.DNSNames, f.cert.NotBefore, f.cert.NotAfter)
				f.secret.Data[corev1.TLSCertKey] = other
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Pass, wantReason: DecisionCustodyRecordMismatch,
		},
		{
			name:        "garbage tls.crt passes",
			setup:       func(_ *testing.T, f *fix) { f.secret.Data[corev1.TLSCertKey] = []byte("not a certificate") },
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Pass, wantReason: DecisionCustodyRecordMismatch,
		},
		{
			name: "serial spelled differently (case, leading zeros, colons) still matches",
			setup: func(_ *testing.T, f *fix) {
				f.secret.Annotations[custody.AnnotationSerial] = "00:" + strings.ToUpper(f.meta.Serial)
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
		},
		{
			name:        "renewal due passes as Renewing",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(f *fix, in *Input) { in.Now = f.cert.NotAfter.Add(-29 * 24 * time.Hour) },
			wantOutcome: PassRewritten, wantReason: "Renewing",
			checks: []check{wantCond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "Renewing", "renewal was scheduled"), wantUnchanged(false)},
		},
		{
			name: "renewal just before it is due is vetoed",
			update: func(f *fix, c *cmapi.Certificate) {
				issuingRedacted(c, f.now)
			},
			adjust:      func(f *fix, in *Input) { in.Now = f.cert.NotAfter.Add(-30*24*time.Hour - time.Second) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
		},
		{
			name: "an earlier status.renewalTime (e.g. from ARI) for this certificate is honoured",
			setup: func(_ *testing.T, f *fix) {
				rt := metav1.NewTime(f.now.Add(-time.Minute))
				f.crt.Status.RenewalTime = &rt
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: "Renewing",
		},
		{
			name: "a stale status.renewalTime of a previous certificate is ignored",
			setup: func(_ *testing.T, f *fix) {
				rt := metav1.NewTime(f.now.Add(-time.Minute))
				na := metav1.NewTime(f.now.Add(time.Hour))
				f.crt.Status.RenewalTime, f.crt.Status.NotAfter = &rt, &na
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
		},
		{
			name: "renewBefore from the spec is used",
			setup: func(_ *testing.T, f *fix) {
				f.crt.Spec.RenewBefore = &metav1.Duration{Duration: 85 * 24 * time.Hour}
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: "Renewing",
		},
		{
			name: "renewal policy Disabled never renews",
			setup: func(_ *testing.T, f *fix) {
				f.crt.Spec.Renewal = &cmapi.CertificateRenewal{Policy: cmapi.CertificateRenewalPolicyDisabled}
				f.crt.Status.RenewalTime = nil
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(f *fix, in *Input) { in.Now = f.cert.NotAfter.Add(-time.Hour) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
		},
		{
			name: "renewal due keeps Ready=True while Issuing passes",
			update: func(f *fix, c *cmapi.Certificate) {
				issuingRedacted(c, f.now)
				readyRedacted(c, f.now)
			},
			adjust:      func(f *fix, in *Input) { in.Now = f.cert.NotAfter.Add(-time.Hour) },
			wantOutcome: PassRewritten, wantReason: "Renewing",
			checks: []check{wantKeptReady, wantCond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "Renewing", "Vault")},
		},
		{
			name:        "expired certificate makes Ready=False Expired",
			update:      func(f *fix, c *cmapi.Certificate) { readyRedacted(c, f.now) },
			adjust:      func(f *fix, in *Input) { in.Now = f.cert.NotAfter.Add(time.Second) },
			wantOutcome: PassRewritten, wantReason: "Expired",
			checks: []check{wantCond(cmapi.CertificateConditionReady, cmmeta.ConditionFalse, "Expired", "expired on")},
		},
		{
			name:        "expired certificate re-issues as Expired",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(f *fix, in *Input) { in.Now = f.cert.NotAfter.Add(time.Hour) },
			wantOutcome: PassRewritten, wantReason: "Expired",
			checks: []check{wantCond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "Expired", "expired on")},
		},
		{
			name: "dnsNames changed against the current request: RequestChanged",
			setup: func(_ *testing.T, f *fix) {
				f.crt.Spec.DNSNames = append(f.crt.Spec.DNSNames, "api.example.com")
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: "RequestChanged",
			checks: []check{wantCond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "RequestChanged", "spec.dnsNames")},
		},
		{
			name: "dnsNames changed without a current request: SecretMismatch from tls.crt",
			setup: func(_ *testing.T, f *fix) {
				f.crt.Spec.DNSNames = []string{"other.example.com"}
			},
			update:      func(f *fix, c *cmapi.Certificate) { readyRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.CurrentRequest = nil },
			wantOutcome: PassRewritten, wantReason: ReasonSecretMismatch,
			checks: []check{wantCond(cmapi.CertificateConditionReady, cmmeta.ConditionFalse, ReasonSecretMismatch, "spec.dnsNames")},
		},
		{
			name:        "no current request and names unchanged is vetoed",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.CurrentRequest = nil },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
		},
		{
			name: "issuerRef changed: IncorrectIssuer",
			setup: func(_ *testing.T, f *fix) {
				f.crt.Spec.IssuerRef = cmmeta.IssuerReference{Name: "vault", Kind: "VaultClusterIssuer", Group: "keyward.io"}
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: "IncorrectIssuer",
		},
		{
			name:        "certificate-name annotation of another Certificate: IncorrectCertificate",
			setup:       func(_ *testing.T, f *fix) { f.secret.Annotations[cmapi.CertificateNameKey] = "other" },
			update:      func(f *fix, c *cmapi.Certificate) { readyRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: "IncorrectCertificate",
		},
		{
			// Two Certificates with one secretName: the Secret and its record
			// are the other Certificate's.
			name: "Secret and record of another Certificate: IncorrectCertificate, not MissingData",
			setup: func(_ *testing.T, f *fix) {
				f.secret.Annotations[cmapi.CertificateNameKey] = "dup-a"
			},
			update:      func(f *fix, c *cmapi.Certificate) { readyRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.Custody.CertificateName = "dup-a"; in.CurrentRequest = nil },
			wantOutcome: PassRewritten, wantReason: "IncorrectCertificate",
			checks: []check{wantCond(cmapi.CertificateConditionReady, cmmeta.ConditionFalse, "IncorrectCertificate", `Secret was issued for Certificate "dup-a"`)},
		},
		{
			name: "key algorithm changed in spec: SecretMismatch",
			setup: func(_ *testing.T, f *fix) {
				f.crt.Spec.PrivateKey = &cmapi.CertificatePrivateKey{Algorithm: cmapi.RSAKeyAlgorithm}
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: ReasonSecretMismatch,
			checks: []check{wantCond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, ReasonSecretMismatch, "spec.privateKey.algorithm")},
		},
		{
			name: "key size changed in spec: SecretMismatch",
			setup: func(_ *testing.T, f *fix) {
				f.crt.Spec.PrivateKey.Size = 384
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: ReasonSecretMismatch,
			checks: []check{wantCond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, ReasonSecretMismatch, "spec.privateKey.size")},
		},
		{
			name:        "RSA 2048 with default spec is vetoed",
			key:         rsaKey,
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			setup:       func(_ *testing.T, f *fix) { f.crt.Spec.PrivateKey = nil },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
		},
		{
			name:        "RSA 2048 when spec asks 4096 re-issues",
			key:         rsaKey,
			keyAlg:      cmapi.RSAKeyAlgorithm,
			keySize:     4096,
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: ReasonSecretMismatch,
		},
		{
			name:        "Ed25519 matching the spec is vetoed",
			key:         edKey,
			keyAlg:      cmapi.Ed25519KeyAlgorithm,
			update:      func(f *fix, c *cmapi.Certificate) { readyRedacted(c, f.now) },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
		},
		{
			name: "unknown key algorithm in spec re-issues instead of panicking",
			setup: func(_ *testing.T, f *fix) {
				f.crt.Spec.PrivateKey.Algorithm = "Kyber"
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: ReasonSecretMismatch,
		},
		{
			name: "current request signed by another key: SecretMismatch",
			setup: func(t *testing.T, f *fix) {
				f.cr.Spec.Request = testCSR(t, testECKey(t, elliptic.P256()), f.crt.Spec.DNSNames)
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: ReasonSecretMismatch,
			checks: []check{wantCond(cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, ReasonSecretMismatch, "current CertificateRequest")},
		},
		{
			name:        "current request with an undecodable CSR: InvalidCertificateRequest",
			setup:       func(_ *testing.T, f *fix) { f.cr.Spec.Request = []byte("junk") },
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: "InvalidCertificateRequest",
		},
		{
			name:  "strict mode with a matching current request is vetoed and keeps the times",
			setup: func(_ *testing.T, f *fix) { f.makeStrict() },
			update: func(f *fix, c *cmapi.Certificate) {
				readyRedacted(c, f.now)
				c.Status.NotBefore, c.Status.NotAfter, c.Status.RenewalTime = nil, nil, nil
			},
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantKeptReady, func(t *testing.T, f *fix, d Decision) {
				if !reflect.DeepEqual(d.Status.NotBefore, f.crt.Status.NotBefore) || !reflect.DeepEqual(d.Status.NotAfter, f.crt.Status.NotAfter) ||
					!reflect.DeepEqual(d.Status.RenewalTime, f.crt.Status.RenewalTime) {
					t.Fatalf("times = %v %v %v, want the old %v %v %v", d.Status.NotBefore, d.Status.NotAfter, d.Status.RenewalTime,
						f.crt.Status.NotBefore, f.crt.Status.NotAfter, f.crt.Status.RenewalTime)
				}
			}},
		},
		{
			name: "strict mode computes renewalTime when none is known",
			setup: func(_ *testing.T, f *fix) {
				f.makeStrict()
				f.crt.Status.NotBefore, f.crt.Status.NotAfter, f.crt.Status.RenewalTime = nil, nil, nil
			},
			update: func(f *fix, c *cmapi.Certificate) {
				readyRedacted(c, f.now)
			},
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{func(t *testing.T, f *fix, d Decision) {
				want := f.cert.NotAfter.Add(-30 * 24 * time.Hour)
				if d.Status.RenewalTime == nil || !d.Status.RenewalTime.Time.Equal(want) {
					t.Fatalf("renewalTime = %v, want %s (2/3 of the lifetime)", d.Status.RenewalTime, want)
				}
				if d.Status.NotAfter == nil || !d.Status.NotAfter.Time.Equal(f.cert.NotAfter) {
					t.Fatalf("notAfter = %v, want %s", d.Status.NotAfter, f.cert.NotAfter)
				}
			}},
		},
		{
			name:        "strict mode renewal due passes as Renewing",
			setup:       func(_ *testing.T, f *fix) { f.makeStrict() },
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(f *fix, in *Input) { in.Now = f.cert.NotAfter.Add(-24 * time.Hour) },
			wantOutcome: PassRewritten, wantReason: "Renewing",
		},
		{
			name:        "strict mode without a current request cannot be verified: pass",
			setup:       func(_ *testing.T, f *fix) { f.makeStrict() },
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.CurrentRequest = nil },
			wantOutcome: Pass, wantReason: DecisionUnverifiable,
		},
		{
			name:  "strict mode first issuance: the request that carries the key stands in for the current one",
			setup: func(_ *testing.T, f *fix) { f.makeStrict() },
			update: func(f *fix, c *cmapi.Certificate) {
				c.Status.Revision = nil
				readyRedacted(c, f.now)
			},
			adjust: func(f *fix, in *Input) {
				other := f.cr.DeepCopy()
				other.Name, other.Annotations[cmapi.CertificateRequestRevisionAnnotationKey] = "web-2", "2"
				other.Spec.Request = f.otherCSR
				in.CurrentRequest, in.Requests = nil, []*cmapi.CertificateRequest{other, nil, f.cr}
			},
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantKeptReady},
		},
		{
			name:  "strict mode: the request for the key is checked against the spec",
			setup: func(_ *testing.T, f *fix) { f.makeStrict(); f.crt.Spec.DNSNames = []string{"new.example.com"} },
			update: func(f *fix, c *cmapi.Certificate) {
				issuingRedacted(c, f.now)
			},
			adjust: func(f *fix, in *Input) {
				in.CurrentRequest, in.Requests = nil, []*cmapi.CertificateRequest{f.cr}
			},
			wantOutcome: PassRewritten, wantReason: "RequestChanged",
		},
		{
			name:  "strict mode: requests for other keys only cannot verify",
			setup: func(_ *testing.T, f *fix) { f.makeStrict() },
			update: func(f *fix, c *cmapi.Certificate) {
				issuingRedacted(c, f.now)
			},
			adjust: func(f *fix, in *Input) {
				other := f.cr.DeepCopy()
				other.Spec.Request = f.otherCSR
				junk := f.cr.DeepCopy()
				junk.Spec.Request = []byte("junk")
				in.CurrentRequest, in.Requests = nil, []*cmapi.CertificateRequest{other, junk}
			},
			wantOutcome: Pass, wantReason: DecisionUnverifiable,
		},
		{
			name:  "outside strict mode other requests are not consulted",
			setup: func(_ *testing.T, f *fix) { f.crt.Spec.DNSNames = []string{"web.example.com", "new.example.com"} },
			update: func(f *fix, c *cmapi.Certificate) {
				issuingRedacted(c, f.now)
			},
			adjust: func(f *fix, in *Input) {
				// The fuzzy tls.crt check decides (SecretMismatch), not RequestChanged.
				in.CurrentRequest, in.Requests = nil, []*cmapi.CertificateRequest{f.cr}
			},
			wantOutcome: PassRewritten, wantReason: ReasonSecretMismatch,
		},
		{
			name: "strict mode with a current request for another key: SecretMismatch",
			setup: func(t *testing.T, f *fix) {
				f.makeStrict()
				f.cr.Spec.Request = testCSR(t, testECKey(t, elliptic.P256()), f.crt.Spec.DNSNames)
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: ReasonSecretMismatch,
		},
		{
			name: "strict mode key size checked through the request's CSR",
			setup: func(_ *testing.T, f *fix) {
				f.makeStrict()
				f.crt.Spec.PrivateKey.Size = 521
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: PassRewritten, wantReason: ReasonSecretMismatch,
		},
		{
			name: "strict mode validity annotation differing from the record passes",
			setup: func(_ *testing.T, f *fix) {
				f.makeStrict()
				f.secret.Annotations[custody.AnnotationNotAfter] = f.cert.NotAfter.Add(time.Hour).UTC().Format(time.RFC3339)
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Pass, wantReason: DecisionCustodyRecordMismatch,
		},
		{
			name: "strict mode without the serial annotation passes",
			setup: func(_ *testing.T, f *fix) {
				f.makeStrict()
				delete(f.secret.Annotations, custody.AnnotationSerial)
			},
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			wantOutcome: Pass, wantReason: DecisionCustodyRecordMismatch,
		},
		{
			name:        "strict mode expired: Ready=False Expired with truthful times",
			setup:       func(_ *testing.T, f *fix) { f.makeStrict() },
			update:      func(f *fix, c *cmapi.Certificate) { readyRedacted(c, f.now); c.Status.NotAfter = nil },
			adjust:      func(f *fix, in *Input) { in.Now = f.cert.NotAfter.Add(time.Minute) },
			wantOutcome: PassRewritten, wantReason: "Expired",
			checks: []check{func(t *testing.T, f *fix, d Decision) {
				if d.Status.NotAfter == nil || !d.Status.NotAfter.Time.Equal(f.cert.NotAfter) {
					t.Fatalf("notAfter = %v, want %s", d.Status.NotAfter, f.cert.NotAfter)
				}
			}},
		},
		{
			name:        "no new Certificate passes",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.New = nil },
			wantOutcome: Pass, wantReason: DecisionNotRedactionRelated,
		},
		{
			name:        "no old Certificate is treated as no prior conditions",
			update:      func(f *fix, c *cmapi.Certificate) { issuingRedacted(c, f.now) },
			adjust:      func(_ *fix, in *Input) { in.Old = nil },
			wantOutcome: Veto, wantReason: DecisionRedactionOnly,
			checks: []check{wantNoIssuing},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newGuardFix(t, testNow(t), tc.key, tc.keyAlg, tc.keySize)
			if tc.setup != nil {
				tc.setup(t, f)
			}
			in := f.input(func(c *cmapi.Certificate) { tc.update(f, c) })
			if tc.adjust != nil {
				tc.adjust(f, &in)
			}
			before := copyInput(in)

			d := Decide(in)

			if d.Outcome != tc.wantOutcome || d.Reason != tc.wantReason {
				t.Fatalf("Decide = %s/%s (%s), want %s/%s", d.Outcome, d.Reason, d.Message, tc.wantOutcome, tc.wantReason)
			}
			if !reflect.DeepEqual(in, before) {
				t.Fatal("Decide modified its input")
			}
			if again := Decide(in); !reflect.DeepEqual(again, d) {
				t.Fatalf("Decide is not deterministic: %+v then %+v", d, again)
			}
			if (d.Outcome == Pass) != (d.Status == nil) {
				t.Fatalf("outcome %s with status %v: a patched status must come with a non-pass outcome and only then", d.Outcome, d.Status)
			}
			if d.Outcome != Pass {
				assertNoRedactionTransition(t, in, d)
			}
			for _, c := range tc.checks {
				c(t, f, d)
			}
		})
	}
}

func copyInput(in Input) Input {
	out := in
	if in.Old != nil {
		out.Old = in.Old.DeepCopy()
	}
	if in.New != nil {
		out.New = in.New.DeepCopy()
	}
	if in.Secret != nil {
		out.Secret = in.Secret.DeepCopy()
	}
	if in.CurrentRequest != nil {
		out.CurrentRequest = in.CurrentRequest.DeepCopy()
	}
	if in.Requests != nil {
		out.Requests = make([]*cmapi.CertificateRequest, len(in.Requests))
		for i, r := range in.Requests {
			out.Requests[i] = r.DeepCopy()
		}
	}
	if in.Custody != nil {
		m := *in.Custody
		out.Custody = &m
	}
	return out
}

// assertNoRedactionTransition checks the invariant of every patched
// status: applying it leaves no redaction-induced transition behind, and
// conditions other than Issuing and Ready are untouched.
func assertNoRedactionTransition(t *testing.T, in Input, d Decision) {
	t.Helper()
	patched := in.New.DeepCopy()
	patched.Status = *d.Status
	if issuingTransition(in.Old, patched, true) != nil || readyTransition(in.Old, patched, true) != nil {
		t.Fatalf("patched status still carries a redaction-induced transition: %+v", d.Status.Conditions)
	}
	for _, c := range in.New.Status.Conditions {
		if c.Type == cmapi.CertificateConditionIssuing || c.Type == cmapi.CertificateConditionReady {
			continue
		}
		if got := cond(d.Status, c.Type); got == nil || !reflect.DeepEqual(*got, c) {
			t.Fatalf("condition %s changed: %+v -> %+v", c.Type, c, got)
		}
	}
}

func TestGuardCandidate(t *testing.T) {
	t.Parallel()
	now := testNow(t)
	ready := func(status cmmeta.ConditionStatus, reason string) func(*cmapi.Certificate) {
		return func(c *cmapi.Certificate) {
			setCond(c, now, cmapi.CertificateConditionReady, status, reason, "m")
		}
	}
	issuing := func(status cmmeta.ConditionStatus, reason string) func(*cmapi.Certificate) {
		return func(c *cmapi.Certificate) {
			setCond(c, now, cmapi.CertificateConditionIssuing, status, reason, "m")
		}
	}
	tests := []struct {
		name     string
		old, new []func(*cmapi.Certificate)
		nilOld   bool
		want     bool
	}{
		{name: "no conditions", want: false},
		{name: "Issuing True MissingData appears", new: []func(*cmapi.Certificate){issuing(cmmeta.ConditionTrue, "MissingData")}, want: true},
		{name: "Issuing True InvalidKeyPair appears", new: []func(*cmapi.Certificate){issuing(cmmeta.ConditionTrue, "InvalidKeyPair")}, want: true},
		{name: "Issuing True SecretMismatch appears", new: []func(*cmapi.Certificate){issuing(cmmeta.ConditionTrue, "SecretMismatch")}, want: true},
		{name: "Issuing True DoesNotExist appears", new: []func(*cmapi.Certificate){issuing(cmmeta.ConditionTrue, "DoesNotExist")}, want: true},
		{name: "Ready False DoesNotExist alone", new: []func(*cmapi.Certificate){ready(cmmeta.ConditionFalse, "DoesNotExist")}, want: false},
		{name: "Issuing True ManuallyTriggered", new: []func(*cmapi.Certificate){issuing(cmmeta.ConditionTrue, "ManuallyTriggered")}, want: false},
		{name: "Issuing False MissingData", new: []func(*cmapi.Certificate){issuing(cmmeta.ConditionFalse, "MissingData")}, want: false},
		{name: "Issuing stays True", old: []func(*cmapi.Certificate){issuing(cmmeta.ConditionTrue, "Renewing")}, new: []func(*cmapi.Certificate){issuing(cmmeta.ConditionTrue, "MissingData")}, want: false},
		{name: "Issuing False to True", old: []func(*cmapi.Certificate){issuing(cmmeta.ConditionFalse, "Failed")}, new: []func(*cmapi.Certificate){issuing(cmmeta.ConditionTrue, "MissingData")}, want: true},
		{name: "Ready True to False MissingData", old: []func(*cmapi.Certificate){ready(cmmeta.ConditionTrue, "Ready")}, new: []func(*cmapi.Certificate){ready(cmmeta.ConditionFalse, "MissingData")}, want: true},
		{name: "Ready absent to False MissingData", new: []func(*cmapi.Certificate){ready(cmmeta.ConditionFalse, "MissingData")}, want: true},
		{name: "Ready False DoesNotExist to False MissingData", old: []func(*cmapi.Certificate){ready(cmmeta.ConditionFalse, "DoesNotExist")}, new: []func(*cmapi.Certificate){ready(cmmeta.ConditionFalse, "MissingData")}, want: true},
		{name: "Ready False MissingData carried over", old: []func(*cmapi.Certificate){ready(cmmeta.ConditionFalse, "MissingData")}, new: []func(*cmapi.Certificate){ready(cmmeta.ConditionFalse, "MissingData")}, want: true},
		{name: "Ready False MissingData carried by an Issuing update", old: []func(*cmapi.Certificate){ready(cmmeta.ConditionFalse, "MissingData")}, new: []func(*cmapi.Certificate){ready(cmmeta.ConditionFalse, "MissingData"), issuing(cmmeta.ConditionTrue, "ManuallyTriggered")}, want: true},
		{name: "Ready True to False Expired", old: []func(*cmapi.Certificate){ready(cmmeta.ConditionTrue, "Ready")}, new: []func(*cmapi.Certificate){ready(cmmeta.ConditionFalse, "Expired")}, want: false},
		{name: "Ready True stays", old: []func(*cmapi.Certificate){ready(cmmeta.ConditionTrue, "Ready")}, new: []func(*cmapi.Certificate){ready(cmmeta.ConditionTrue, "Ready")}, want: false},
		{name: "nil old", nilOld: true, new: []func(*cmapi.Certificate){issuing(cmmeta.ConditionTrue, "MissingData")}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			old := &cmapi.Certificate{}
			for _, m := range tc.old {
				m(old)
			}
			newCrt := old.DeepCopy()
			for _, m := range tc.new {
				m(newCrt)
			}
			if tc.nilOld {
				old = nil
			}
			if got := Candidate(old, newCrt); got != tc.want {
				t.Fatalf("Candidate = %v, want %v", got, tc.want)
			}
		})
	}
	if Candidate(&cmapi.Certificate{}, nil) {
		t.Fatal("Candidate(_, nil) = true")
	}
}

func TestGuardOutcomeString(t *testing.T) {
	t.Parallel()
	for o, want := range map[Outcome]string{Pass: "pass", PassRewritten: "pass_rewritten", Veto: "veto", Outcome(9): "Outcome(9)"} {
		if got := o.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(o), got, want)
		}
	}
}

func TestGuardRedactionReasonsIsACopy(t *testing.T) {
	t.Parallel()
	r := RedactionReasons()
	r[0] = "changed"
	if RedactionReasons()[0] != ReasonMissingData {
		t.Fatal("RedactionReasons shares its backing array")
	}
}

func BenchmarkDecideGuard(b *testing.B) {
	f := newGuardFix(b, testNow(b), nil, "", 0)
	in := f.input(func(c *cmapi.Certificate) {
		issuingRedacted(c, f.now)
		readyRedacted(c, f.now)
	})
	if d := Decide(in); d.Outcome != Veto {
		b.Fatalf("benchmark input decides %s/%s, want a full veto", d.Outcome, d.Reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(in)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// TestDecideGuardCompletesIssuance: the issuing controller's last write of a
// first issuance whose certificate is in custody makes the Certificate
// Ready=True with the times readiness would set, so that readiness's own
// redaction-induced write is then a no-op; anything genuine is left to
// cert-manager.
func TestDecideGuardCompletesIssuance(t *testing.T) {
	t.Parallel()
	now := testNow(t)
	// fresh is the stored state during a first issuance, and the issuing
	// controller's update that ends it.
	fresh := func(f *fix) Input {
		old := f.crt.DeepCopy()
		old.Status = cmapi.CertificateStatus{}
		setCond(old, now.Add(-time.Minute), cmapi.CertificateConditionReady, cmmeta.ConditionFalse, "DoesNotExist", "Issuing certificate as Secret does not exist")
		setCond(old, now.Add(-time.Minute), cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue, "DoesNotExist", "Issuing certificate as Secret does not exist")
		old.Status.NextPrivateKeySecretName = ptr.To(f.crt.Name + "-x7k2p")
		newCrt := old.DeepCopy()
		newCrt.Status.Conditions = newCrt.Status.Conditions[:1]
		newCrt.Status.Revision = ptr.To(1)
		meta := f.meta
		return Input{Old: old, New: newCrt, Secret: f.secret, Custody: &meta, CurrentRequest: f.cr, Now: now}
	}

	f := newGuardFix(t, now, nil, "", 0)
	in := fresh(f)
	if !Candidate(in.Old, in.New) {
		t.Fatal("Candidate does not select the end of an issuance")
	}
	d := Decide(in)
	if d.Outcome != PassRewritten || d.Reason != "Ready" || d.Unchanged {
		t.Fatalf("decision %s/%s (unchanged %v), want pass_rewritten/Ready, changed: %s", d.Outcome, d.Reason, d.Unchanged, d.Message)
	}
	r := cond(d.Status, cmapi.CertificateConditionReady)
	if r == nil || r.Status != cmmeta.ConditionTrue || r.Message != ReadyMessage || r.ObservedGeneration != in.New.Generation {
		t.Fatalf("Ready = %+v, want True with the custody message and observedGeneration %d", r, in.New.Generation)
	}
	if cond(d.Status, cmapi.CertificateConditionIssuing) != nil || d.Status.Revision == nil || *d.Status.Revision != 1 {
		t.Fatalf("the issuing controller's own changes were not kept: %+v", d.Status)
	}
	// The key manager's clean-up write is made unnecessary: the field it
	// would clear is cleared here (and the request itself is not modified).
	if d.Status.NextPrivateKeySecretName != nil || in.New.Status.NextPrivateKeySecretName == nil {
		t.Fatalf("nextPrivateKeySecretName: decision %v, request %v; want cleared in the decision only", d.Status.NextPrivateKeySecretName, in.New.Status.NextPrivateKeySecretName)
	}
	wantRT, _ := pki.RenewalTime(f.cert.NotBefore, f.cert.NotAfter, in.New.Spec.RenewBefore, in.New.Spec.RenewBeforePercentage, in.New.Spec.Renewal)
	if d.Status.NotBefore == nil || !d.Status.NotBefore.Equal(&metav1.Time{Time: f.cert.NotBefore}) ||
		d.Status.NotAfter == nil || !d.Status.NotAfter.Equal(&metav1.Time{Time: f.cert.NotAfter}) ||
		d.Status.RenewalTime == nil || !d.Status.RenewalTime.Equal(wantRT) {
		t.Fatalf("times %v %v %v, want the certificate's validity and renewal time %v", d.Status.NotBefore, d.Status.NotAfter, d.Status.RenewalTime, wantRT)
	}

	// Then readiness looks: it computes the same times and Ready=False
	// MissingData. The guard drops that, and the write changes nothing.
	stored := in.New.DeepCopy()
	stored.Status = *d.Status
	next := stored.DeepCopy()
	readyRedacted(next, now.Add(time.Second))
	next.Status.NotBefore, next.Status.NotAfter, next.Status.RenewalTime = stored.Status.NotBefore.DeepCopy(), stored.Status.NotAfter.DeepCopy(), wantRT
	d2 := Decide(Input{Old: stored, New: next, Secret: f.secret, Custody: in.Custody, CurrentRequest: f.cr, Now: now.Add(time.Second)})
	if d2.Outcome != Veto || !d2.Unchanged {
		t.Fatalf("readiness after completion: %s (unchanged %v), want a veto that changes nothing", d2.Outcome, d2.Unchanged)
	}

	t.Run("ending write that still carries readiness's Ready=False", func(t *testing.T) {
		t.Parallel()
		// Readiness saw the redacted Secret while the issuance was
		// running and stored Ready=False/MissingData; the issuing
		// controller's write keeps it. Vetoed into Ready=True, it ends the
		// key manager's part too.
		f := newGuardFix(t, now, nil, "", 0)
		in := fresh(f)
		readyRedacted(in.Old, now.Add(-time.Second))
		readyRedacted(in.New, now.Add(-time.Second))
		if !CompletesIssuance(in.Old, in.New) || !Candidate(in.Old, in.New) {
			t.Fatal("the ending write carrying Ready=False is not selected")
		}
		d := Decide(in)
		if d.Outcome != Veto {
			t.Fatalf("decision %s/%s, want veto: %s", d.Outcome, d.Reason, d.Message)
		}
		if r := cond(d.Status, cmapi.CertificateConditionReady); r == nil || r.Status != cmmeta.ConditionTrue || d.Status.NextPrivateKeySecretName != nil {
			t.Fatalf("Ready %+v, nextPrivateKeySecretName %v; want True and cleared", r, d.Status.NextPrivateKeySecretName)
		}
		// A redaction-induced Ready=False that does not end an issuance
		// leaves the field as it is.
		mid := fresh(f)
		readyRedacted(mid.Old, now.Add(-time.Second))
		mid.New = mid.Old.DeepCopy()
		readyRedacted(mid.New, now)
		mid.New.Status.Conditions[0].Message = "Issuing certificate as Secret does not contain a private key (again)"
		if d := Decide(mid); d.Status == nil || d.Status.NextPrivateKeySecretName == nil {
			t.Fatalf("mid-issuance decision %s cleared nextPrivateKeySecretName", d.Outcome)
		}
	})
	t.Run("expired certificate is left to cert-manager", func(t *testing.T) {
		t.Parallel()
		f := newGuardFix(t, now, nil, "", 0)
		in := fresh(f)
		in.Now = f.cert.NotAfter.Add(time.Hour)
		if d := Decide(in); d.Outcome != Pass || d.Status != nil {
			t.Fatalf("decision %s/%s, want pass untouched", d.Outcome, d.Reason)
		}
	})
	t.Run("Secret not in custody", func(t *testing.T) {
		t.Parallel()
		f := newGuardFix(t, now, nil, "", 0)
		in := fresh(f)
		in.Secret = f.secret.DeepCopy()
		delete(in.Secret.Labels, custody.LabelCustody)
		if d := Decide(in); d.Outcome != Pass || d.Reason != DecisionNotInCustody {
			t.Fatalf("decision %s/%s, want pass/%s", d.Outcome, d.Reason, DecisionNotInCustody)
		}
	})
	t.Run("record does not describe the new certificate", func(t *testing.T) {
		t.Parallel()
		f := newGuardFix(t, now, nil, "", 0)
		in := fresh(f)
		in.Custody.Serial = "abcdef"
		if d := Decide(in); d.Outcome != Pass || d.Reason != DecisionCustodyRecordMismatch {
			t.Fatalf("decision %s/%s, want pass/%s", d.Outcome, d.Reason, DecisionCustodyRecordMismatch)
		}
	})
	t.Run("failed issuance is not a completion", func(t *testing.T) {
		t.Parallel()
		f := newGuardFix(t, now, nil, "", 0)
		in := fresh(f)
		setCond(in.New, now, cmapi.CertificateConditionIssuing, cmmeta.ConditionFalse, "Failed", "The certificate request has failed to complete and will be retried")
		if Candidate(in.Old, in.New) {
			t.Fatal("Candidate selects a failed issuance")
		}
		if d := Decide(in); d.Outcome != Pass || d.Reason != DecisionNotRedactionRelated {
			t.Fatalf("decision %s/%s, want pass/%s", d.Outcome, d.Reason, DecisionNotRedactionRelated)
		}
	})
}
