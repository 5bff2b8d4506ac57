// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/keyward-io/keyward/custody"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fuzzCond applies "Status/Reason/Message" (empty: no change, "-":
// remove) as a condition of type typ.
func fuzzCond(c *cmapi.Certificate, now time.Time, typ cmapi.CertificateConditionType, spec string) {
	switch spec {
	case "":
		return
	case "-":
		out := c.Status.Conditions[:0]
		for _, cond := range c.Status.Conditions {
			if cond.Type != typ {
				out = append(out, cond)
			}
		}
		c.Status.Conditions = out
		return
	}
	parts := strings.SplitN(spec, "/", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	setCond(c, now, typ, cmmeta.ConditionStatus(parts[0]), parts[1], parts[2])
}

// fuzzAnnotation sets (value), deletes ("-") or keeps ("") an annotation.
func fuzzAnnotation(s *corev1.Secret, key, v string) {
	switch v {
	case "":
	case "-":
		delete(s.Annotations, key)
	default:
		s.Annotations[key] = v
	}
}

// FuzzDecideGuard drives Decide with arbitrary condition transitions,
// annotations, validity, key spec, request and certificate bytes around a
// consistent custody fixture, and checks the guard's invariants: it never
// panics, is deterministic, never modifies its input, passes everything that
// is not a redaction-induced transition on a Secret in custody, and when it
// patches, leaves no redaction-induced transition behind and touches no
// other condition.
func FuzzDecideGuard(f *testing.F) {
	fix := newGuardFix(f, time.Date(2031, 5, 17, 8, 0, 0, 0, time.UTC), nil, "", 0)
	strictFix := newGuardFix(f, fix.now, fix.key, cmapi.ECDSAKeyAlgorithm, 256)
	strictFix.makeStrict()

	f.Add("", "True/MissingData/"+msgNoKey, "", "", false, false, int64(0), "", "", "", "", 0, "", int64(0), []byte(nil), []byte(nil))
	f.Add("", "", "", "False/MissingData/"+msgNoKey, true, false, int64(0), "", "", "", "", 0, "", int64(0), []byte(nil), []byte(nil))
	f.Add("", "True/ManuallyTriggered/manual", "", "", false, false, int64(0), "", "", "", "", 0, "", int64(0), []byte(nil), []byte(nil))

	f.Fuzz(func(t *testing.T, issuingOld, issuingNew, readyOld, readyNew string, strict, dropCR bool, nowOffset int64,
		serialAnn, keyAnn, notAfterAnn, keyAlg string, keySize int, dnsName string, renewBefore int64, request, tlsCrt []byte) {
		base := fix
		if strict {
			base = strictFix
		}
		const maxOffset = int64(200 * 365 * 24 * 3600)
		now := base.now.Add(time.Duration(nowOffset%maxOffset) * time.Second)

		old := base.crt.DeepCopy()
		fuzzCond(old, base.now, cmapi.CertificateConditionIssuing, issuingOld)
		fuzzCond(old, base.now, cmapi.CertificateConditionReady, readyOld)
		if keyAlg != "" {
			old.Spec.PrivateKey = &cmapi.CertificatePrivateKey{Algorithm: cmapi.PrivateKeyAlgorithm(keyAlg), Size: keySize}
		}
		if dnsName != "" {
			old.Spec.DNSNames = []string{dnsName}
		}
		if renewBefore != 0 {
			old.Spec.RenewBefore = &metav1.Duration{Duration: time.Duration(renewBefore%maxOffset) * time.Second}
		}
		newCrt := old.DeepCopy()
		fuzzCond(newCrt, now, cmapi.CertificateConditionIssuing, issuingNew)
		fuzzCond(newCrt, now, cmapi.CertificateConditionReady, readyNew)

		secret := base.secret.DeepCopy()
		fuzzAnnotation(secret, custody.AnnotationSerial, serialAnn)
		fuzzAnnotation(secret, custody.AnnotationKeySHA256, keyAnn)
		fuzzAnnotation(secret, custody.AnnotationNotAfter, notAfterAnn)
		if len(tlsCrt) > 0 {
			secret.Data[corev1.TLSCertKey] = tlsCrt
		}
		cr := base.cr.DeepCopy()
		if len(request) > 0 {
			cr.Spec.Request = request
		}
		var reqs []*cmapi.CertificateRequest
		if dropCR {
			// No current request; in strict mode the same request may still
			// be found among the Certificate's requests by its key.
			cr, reqs = nil, []*cmapi.CertificateRequest{cr}
		}
		meta := base.meta
		in := Input{Old: old, New: newCrt, Secret: secret, Custody: &meta, CurrentRequest: cr, Requests: reqs, Now: now}
		before := copyInput(in)

		d := Decide(in)

		if !reflect.DeepEqual(in, before) {
			t.Fatal("Decide modified its input")
		}
		if again := Decide(in); !reflect.DeepEqual(again, d) {
			t.Fatalf("not deterministic: %+v then %+v", d, again)
		}
		if (d.Outcome == Pass) != (d.Status == nil) {
			t.Fatalf("outcome %s with status %v", d.Outcome, d.Status)
		}
		if d.Reason == "" {
			t.Fatal("decision without a reason")
		}
		if !Candidate(old, newCrt) && d.Outcome != Pass {
			t.Fatalf("not a candidate but %s/%s", d.Outcome, d.Reason)
		}
		if d.Outcome == Pass {
			return
		}
		if d.Unchanged != reflect.DeepEqual(jSON(t, d.Status), jSON(t, &old.Status)) {
			t.Fatalf("Unchanged = %v but the patched status is %s and the stored one %s", d.Unchanged, jSON(t, d.Status), jSON(t, &old.Status))
		}
		if !inCustody(secret) {
			t.Fatalf("%s on a Secret not in custody", d.Outcome)
		}
		assertNoRedactionTransition(t, in, d)
	})
}

func jSON(t *testing.T, st *cmapi.CertificateStatus) string {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
