// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import (
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// completeIssuance decides the write that ends an issuance whose new
// certificate is in custody and matches its record: with no genuine reason
// against it, the Certificate becomes Ready=True in that write, with
// notBefore, notAfter and renewalTime as the readiness controller computes
// them, so readiness finds nothing to change but the redaction-induced
// Ready=False, which the guard then drops as a no-op. The same write also
// ends the key manager's part (endKeyManagerPart). With a genuine reason
// (expired, spec or chain mismatch) the write passes untouched and cert-manager's
// readiness controller reports it, as without Keyward.
func completeIssuance(in Input, view certView, readyFinding *finding) Decision {
	if readyFinding != nil {
		return pass(readyFinding.reason, "issuance completed, but not ready: "+readyFinding.message)
	}
	status := in.New.Status.DeepCopy()
	t := metav1.NewTime(in.Now.Truncate(time.Second))
	ready := cmapi.CertificateCondition{
		Type:               cmapi.CertificateConditionReady,
		Status:             cmmeta.ConditionTrue,
		Reason:             cmReasonReady,
		Message:            ReadyMessage,
		LastTransitionTime: &t,
		ObservedGeneration: in.New.Generation,
	}
	replaced := false
	for i := range status.Conditions {
		if status.Conditions[i].Type == cmapi.CertificateConditionReady {
			status.Conditions[i], replaced = ready, true
		}
	}
	if !replaced {
		status.Conditions = append(status.Conditions, ready)
	}
	restoreTimes(status, in.Old, in.New, view)
	endKeyManagerPart(status)
	return Decision{
		Outcome: PassRewritten,
		Reason:  cmReasonReady,
		Message: "issuance completed with the private key in custody; Ready=True set in the same write",
		Status:  status,
	}
}

// endKeyManagerPart clears status.nextPrivateKeySecretName in a write that
// ends an issuance and that the guard makes Ready=True, as cert-manager's
// key manager does in a write of its own as soon as Issuing is gone: in
// custody that write would store one more version and wake the trigger and
// readiness controllers once more, each into a redaction-induced update for
// the guard to drop. The key manager still deletes the temporary key Secret
// (it finds it by label and owner, not by this field) and then finds the
// field already clear.
func endKeyManagerPart(st *cmapi.CertificateStatus) {
	st.NextPrivateKeySecretName = nil
}

// rewriteCondition replaces the reason and message of the condition of
// type t, keeping status, lastTransitionTime and observedGeneration.
func rewriteCondition(st *cmapi.CertificateStatus, t cmapi.CertificateConditionType, f *finding) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			st.Conditions[i].Reason = f.reason
			st.Conditions[i].Message = f.message
		}
	}
}

// restoreIssuing undoes the Issuing=True transition: the condition goes
// back to what old had, or disappears if old had none.
func restoreIssuing(st *cmapi.CertificateStatus, old *cmapi.Certificate) {
	prev := condition(old, cmapi.CertificateConditionIssuing)
	out := st.Conditions[:0]
	for _, c := range st.Conditions {
		if c.Type == cmapi.CertificateConditionIssuing {
			if prev == nil {
				continue
			}
			c = *prev.DeepCopy()
		}
		out = append(out, c)
	}
	st.Conditions = out
}

// keepReady replaces the redaction-induced Ready=False with Ready=True:
// old's Ready=True condition (lastTransitionTime kept) or, if old was not
// ready, a new one that transitions now.
func keepReady(st *cmapi.CertificateStatus, old *cmapi.Certificate, proposed *cmapi.CertificateCondition, now time.Time) {
	var c cmapi.CertificateCondition
	if prev := condition(old, cmapi.CertificateConditionReady); prev != nil && prev.Status == cmmeta.ConditionTrue {
		c = *prev.DeepCopy()
	} else {
		t := metav1.NewTime(now.Truncate(time.Second))
		c = cmapi.CertificateCondition{
			Type:               cmapi.CertificateConditionReady,
			Status:             cmmeta.ConditionTrue,
			Reason:             cmReasonReady,
			LastTransitionTime: &t,
		}
	}
	c.Message = ReadyMessage
	c.ObservedGeneration = proposed.ObservedGeneration
	for i := range st.Conditions {
		if st.Conditions[i].Type == cmapi.CertificateConditionReady {
			st.Conditions[i] = c
		}
	}
}

// restoreTimes keeps notBefore, notAfter and renewalTime truthful in
// strict mode, where cert-manager's readiness controller cannot read tls.crt
// and clears them.
func restoreTimes(st *cmapi.CertificateStatus, old, new *cmapi.Certificate, view certView) {
	nb, na := metav1.NewTime(view.notBefore.Truncate(time.Second)), metav1.NewTime(view.notAfter.Truncate(time.Second))
	st.NotBefore, st.NotAfter = &nb, &na

	sameCert := func(s cmapi.CertificateStatus) bool {
		return s.RenewalTime != nil && s.NotAfter != nil && sameSecond(s.NotAfter.Time, view.notAfter)
	}
	switch {
	case sameCert(new.Status):
		// cert-manager's own value (possibly from ARI) for this certificate.
	case old != nil && sameCert(old.Status):
		st.RenewalTime = old.Status.RenewalTime.DeepCopy()
	default:
		rt, _ := pki.RenewalTime(view.notBefore, view.notAfter, new.Spec.RenewBefore, new.Spec.RenewBeforePercentage, new.Spec.Renewal)
		st.RenewalTime = rt
	}
}
