// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import (
	"fmt"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/keyward-io/keyward/custody"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

// The custody guard answers one question for cert-manager's certificates-trigger
// and certificates-readiness controllers: is the change they are about to make
// to a Certificate's status caused only by Keyward having emptied tls.key?
//
// Both controllers evaluate a policy chain that stops at the first violation
// (internal/controller/certificates/policies in cert-manager v1.21.2), and the
// very first data check, SecretIsMissingData, fails as soon as tls.key is empty.
// Every later check (issuer, spec, renewal, expiry) is therefore hidden behind
// "MissingData". The guard re-runs the checks that do not need the private key
// on public data (tls.crt or, in strict mode, Keyward's annotations, the
// current CertificateRequest and the custody record's metadata) and either lets
// the change through with the reason cert-manager would have given, or drops it.

// Reasons cert-manager's trigger and readiness policy chains give when the
// Secret's private key is absent, unparsable or different from the one that
// signed the certificate. They are the string values of the constants in
// cert-manager v1.21.2 internal/controller/certificates/policies/constants.go
// (that package is internal, so the values are repeated here).
const (
	// ReasonMissingData comes from SecretIsMissingData: tls.key (or
	// tls.crt in strict mode, or all data) is empty.
	ReasonMissingData = "MissingData"
	// ReasonInvalidKeyPair comes from SecretPublicKeysDiffer,
	// SecretPrivateKeyMismatchesSpec and
	// SecretPublicKeyDiffersFromCurrentCertificateRequest when tls.key does
	// not decode or does not match tls.crt.
	ReasonInvalidKeyPair = "InvalidKeyPair"
	// ReasonSecretMismatch comes from SecretPrivateKeyMismatchesSpec and
	// SecretPublicKeyDiffersFromCurrentCertificateRequest (both about the
	// private key), but also from the spec check on tls.crt when there is no
	// current CertificateRequest, which has nothing to do with the key. Only
	// the key-related ones (their message mentions the private key) are
	// considered redaction-induced.
	ReasonSecretMismatch = "SecretMismatch"
	// ReasonDoesNotExist comes from SecretDoesNotExist: the Secret is not in
	// the trigger's informer cache. The guard looks at it only on Issuing:
	// when the Secret does exist as a placeholder, cert-manager's cache is
	// behind the apiserver (a placeholder just restored by adoption or from a
	// backup, or the Secret of an issuance that has just completed), and the
	// issuance it asks for is decided like one asked for with MissingData.
	ReasonDoesNotExist = "DoesNotExist"
)

// Reasons the guard writes when it rewrites a redaction-induced condition into
// the one cert-manager would have set had it been able to see past the empty
// tls.key. They are cert-manager's own reason strings, so dashboards and
// alerts keyed on them keep working.
const (
	cmReasonIncorrectIssuer           = "IncorrectIssuer"
	cmReasonIncorrectCertificate      = "IncorrectCertificate"
	cmReasonRequestChanged            = "RequestChanged"
	cmReasonInvalidCertificateRequest = "InvalidCertificateRequest"
	cmReasonRenewing                  = "Renewing"
	cmReasonExpired                   = "Expired"
	cmReasonReady                     = "Ready"
)

// Reasons a Decision carries when the guard does not take a side on
// cert-manager's change (Pass) or when it drops it (Veto). The set is
// closed so that it can be logged and counted without unbounded cardinality.
const (
	// DecisionNotRedactionRelated: the update neither newly sets
	// Issuing=True nor carries Ready=False with a redaction-induced reason.
	DecisionNotRedactionRelated = "NotRedactionRelated"
	// DecisionSecretNotFound: the target Secret is not known.
	DecisionSecretNotFound = "SecretNotFound"
	// DecisionNotInCustody: the Secret does not carry Keyward's custody
	// label and annotations, so an empty key is not Keyward's doing.
	DecisionNotInCustody = "NotInCustody"
	// DecisionCustodyRecordNotFound: Vault holds no record for the Secret.
	DecisionCustodyRecordNotFound = "CustodyRecordNotFound"
	// DecisionCustodyRecordMismatch: the record does not describe the
	// certificate in the Secret (serial, key fingerprint, validity or owner).
	DecisionCustodyRecordMismatch = "CustodyRecordMismatch"
	// DecisionUnverifiable: a check could not be run on public data
	// (strict mode without a current CertificateRequest), so cert-manager's
	// judgement stands.
	DecisionUnverifiable = "Unverifiable"
	// DecisionRedactionOnly: every check passed on public data; the
	// change was caused by the empty tls.key alone and is dropped.
	DecisionRedactionOnly = "RedactionOnly"
)

// ReadyMessage is the Ready=True message the guard writes when it keeps a
// Certificate ready whose Secret has had its private key moved to Vault.
const ReadyMessage = "Certificate is up to date and has not expired; its private key is held in Vault by Keyward, so tls.key in the Secret is intentionally empty"

// RedactionReasons returns the cert-manager condition reasons that an
// emptied tls.key can cause (see ReasonMissingData and friends). The
// webhook's CEL matchConditions are built from this list, so the apiserver
// and Decide agree on which updates are worth a look.
func RedactionReasons() []string {
	return []string{ReasonMissingData, ReasonInvalidKeyPair, ReasonSecretMismatch}
}

// IssuingReasons returns the Issuing=True reasons the guard looks at:
// RedactionReasons and ReasonDoesNotExist. A Ready=False/DoesNotExist is not
// looked at: the issuance it goes with is, and the readiness controller
// writes MissingData once its cache holds the placeholder.
func IssuingReasons() []string {
	return append(RedactionReasons(), ReasonDoesNotExist)
}

// Outcome says what the admission webhook does with cert-manager's update.
type Outcome int

const (
	// Pass lets the update through unmodified; Decision.Status is nil.
	Pass Outcome = iota
	// PassRewritten lets a genuine transition through, but with the
	// reason and message that say why (e.g. Renewing instead of MissingData).
	// Redaction-only transitions in the same update are still dropped.
	PassRewritten
	// Veto drops every redaction-induced transition in the update:
	// Issuing=True is not added, Ready=False is replaced by Ready=True.
	Veto
)

// String returns the outcome as a lower-case snake-case word suitable as a
// metric label value.
func (o Outcome) String() string {
	switch o {
	case Pass:
		return "pass"
	case PassRewritten:
		return "pass_rewritten"
	case Veto:
		return "veto"
	default:
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
}

// Input is everything Decide looks at. It is public data only: no
// private key is ever needed to decide.
type Input struct {
	// Old is the Certificate as stored; New is what cert-manager wants to
	// store. New must not be nil for the guard to act.
	Old, New *cmapi.Certificate
	// Secret is the Certificate's target Secret as seen by the caller (from
	// an informer cache); nil if it does not exist.
	Secret *corev1.Secret
	// Custody is the custody record's metadata for the Secret, nil if the
	// store has no record.
	Custody *custody.Metadata
	// CurrentRequest is the CertificateRequest for New's status.revision
	// (cert-manager's "current" request), nil if there is none.
	CurrentRequest *cmapi.CertificateRequest
	// Requests are the CertificateRequests controlled by the Certificate
	// (optional). They matter only in strict mode without a CurrentRequest
	// (typically a first issuance, before status.revision is set): the
	// newest one whose CSR holds the key in custody stands in for the
	// current request, since there is no tls.crt to fall back on.
	Requests []*cmapi.CertificateRequest
	// Now is the decision time (an injected clock).
	Now time.Time
}

// Decision is Decide's answer.
type Decision struct {
	// Outcome is what to do with the update.
	Outcome Outcome
	// Reason is a short CamelCase word from a closed set: one of the
	// Decision* constants, or for PassRewritten the cert-manager
	// reason that was written (Renewing, Expired, RequestChanged, ...).
	Reason string
	// Message explains the decision for logs; it contains no secret data.
	Message string
	// Status is the complete status the Certificate must be stored with
	// (a modified copy of New.Status); nil when Outcome is Pass.
	Status *cmapi.CertificateStatus
	// Unchanged reports that Status equals Old's status: once patched, the
	// update changes nothing. The apiserver records field ownership for the
	// requester before mutating admission runs, so a caller should then also
	// keep Old's managedFields; otherwise that bookkeeping alone stores a new
	// version, which wakes cert-manager's controllers to try again.
	Unchanged bool
}

// Candidate reports whether the update from old to new newly sets
// Issuing=True with one of IssuingReasons, carries Ready=False with one of
// RedactionReasons, or ends an issuance (CompletesIssuance). It is the Go
// twin of the webhook's CEL matchConditions and lets callers skip all lookups
// for updates Decide would pass anyway. old may be nil (no prior state).
func Candidate(old, new *cmapi.Certificate) bool {
	if new == nil {
		return false
	}
	return issuingTransition(old, new, false) != nil || readyTransition(old, new, false) != nil || CompletesIssuance(old, new)
}

// CompletesIssuance reports whether the update is the one that ends an
// issuance (cert-manager's issuing controller, right after it wrote the
// Secret): old had Issuing=True, new has conditions but no Issuing one, and
// new is not Ready=True. When the new certificate is in custody and sound, Decide
// makes it Ready=True in that same write, with the validity and renewal time
// cert-manager's readiness controller would set, and clears
// nextPrivateKeySecretName as its key manager would (completeIssuance; or
// rewriteTransitions when the write still carries readiness's Ready=False).
// Otherwise readiness would first write Ready=False/MissingData, have it
// rewritten to True, and that extra version (like the key manager's own
// write) would wake every cert-manager controller once more.
func CompletesIssuance(old, new *cmapi.Certificate) bool {
	if old == nil || new == nil {
		return false
	}
	if o := condition(old, cmapi.CertificateConditionIssuing); o == nil || o.Status != cmmeta.ConditionTrue {
		return false
	}
	// Success removes the condition; a failed issuance sets it False.
	if len(new.Status.Conditions) == 0 || condition(new, cmapi.CertificateConditionIssuing) != nil {
		return false
	}
	r := condition(new, cmapi.CertificateConditionReady)
	return r == nil || r.Status != cmmeta.ConditionTrue
}

// Decide decides whether a Certificate status update made by
// cert-manager's trigger or readiness controller is caused only by Keyward's
// redaction of tls.key. It is pure: same input, same decision.
//
// Contract:
//   - Updates that neither newly set Issuing=True with a redaction-induced
//     reason or DoesNotExist, nor carry Ready=False with a redaction-induced
//     reason, nor end an issuance (CompletesIssuance), pass untouched
//     (ManuallyTriggered, IncorrectIssuer, ...).
//   - Issuing=True with DoesNotExist passes untouched when the Secret does
//     not exist; when it does, cert-manager's cache is behind and the update
//     is decided like one with MissingData.
//   - The end of an issuance whose new certificate is in custody, matches
//     its record and has no genuine reason against it is made Ready=True in
//     that write (PassRewritten, reason Ready); otherwise it passes
//     untouched.
//   - Secrets not in custody, without a custody record, or whose record does
//     not describe the certificate they hold pass untouched: cert-manager
//     re-issues, which costs one issuance and never loses a key.
//   - A placeholder that cert-manager wrote for another Certificate (two
//     Certificates with one secretName) passes with cert-manager's own
//     reason, IncorrectCertificate, instead of MissingData.
//   - Otherwise the checks cert-manager could not reach are re-run on public
//     data. A genuine reason passes with that reason (PassRewritten);
//     none drops the change (Veto): Issuing keeps its old state, Ready
//     is kept (or made) True with ReadyMessage and the old
//     lastTransitionTime.
//   - In strict mode (no tls.crt in the Secret) notBefore, notAfter and
//     renewalTime are restored from the verified annotations whenever the
//     status is patched, since cert-manager clears them.
func Decide(in Input) Decision {
	if in.New == nil {
		return pass(DecisionNotRedactionRelated, "no Certificate in the update")
	}
	issuing := issuingTransition(in.Old, in.New, true)
	ready := readyTransition(in.Old, in.New, true)
	completion := issuing == nil && ready == nil && CompletesIssuance(in.Old, in.New)
	if issuing == nil && ready == nil && !completion {
		return pass(DecisionNotRedactionRelated, "update neither newly sets Issuing=True nor carries Ready=False for a redaction-induced reason")
	}
	if in.Secret == nil {
		return pass(DecisionSecretNotFound, fmt.Sprintf("Secret %q not found", in.New.Spec.SecretName))
	}
	if !inCustody(in.Secret) {
		return pass(DecisionNotInCustody, fmt.Sprintf("Secret %q is not in Keyward custody", in.Secret.Name))
	}
	if owner := in.Secret.Annotations[cmapi.CertificateNameKey]; owner != "" && owner != in.New.Name && !completion {
		// Another Certificate's Secret (two Certificates share a
		// secretName): cert-manager's own reason, which the empty tls.key
		// hid behind MissingData. The record, if any, is that Certificate's.
		f := &finding{reason: cmReasonIncorrectCertificate, message: fmt.Sprintf("Secret was issued for Certificate %q", owner)}
		return rewriteTransitions(in, certView{}, issuing, ready, f, f)
	}
	if in.Custody == nil {
		return pass(DecisionCustodyRecordNotFound, fmt.Sprintf("no custody record for Secret %q", in.Secret.Name))
	}
	view, mismatch := viewCertificate(in.New, in.Secret, *in.Custody)
	if mismatch != "" {
		return pass(DecisionCustodyRecordMismatch, mismatch)
	}

	chain, unverifiable := checkChain(in, view)
	if unverifiable != "" {
		return pass(DecisionUnverifiable, unverifiable)
	}
	readyFinding, issuingFinding := findings(in, view, chain)
	if completion {
		return completeIssuance(in, view, readyFinding)
	}
	return rewriteTransitions(in, view, issuing, ready, issuingFinding, readyFinding)
}

// findings are the genuine reasons against the certificate: the chain's
// first finding for both conditions; else expiry for both; else a due
// renewal, for Issuing only.
func findings(in Input, view certView, chain *finding) (ready, issuing *finding) {
	switch {
	case chain != nil:
		return chain, chain
	case in.Now.After(view.notAfter):
		expired := &finding{
			reason:  cmReasonExpired,
			message: fmt.Sprintf("Certificate expired on %s (its private key is held in Vault)", view.notAfter.UTC().Format(time.RFC1123)),
		}
		return expired, expired
	default:
		return nil, renewalDue(in, view)
	}
}

// rewriteTransitions applies the findings to the redaction-induced
// transitions: a finding passes with its reason, no finding drops the
// transition (Issuing restored, Ready kept True).
func rewriteTransitions(in Input, view certView, issuing, ready *cmapi.CertificateCondition, issuingFinding, readyFinding *finding) Decision {
	status := in.New.Status.DeepCopy()
	var rewritten []string
	firstReason := ""
	vetoed := false
	if issuing != nil {
		if issuingFinding != nil {
			rewriteCondition(status, cmapi.CertificateConditionIssuing, issuingFinding)
			rewritten = append(rewritten, "Issuing="+issuingFinding.reason)
			firstReason = issuingFinding.reason
		} else {
			restoreIssuing(status, in.Old)
			vetoed = true
		}
	}
	if ready != nil {
		if readyFinding != nil {
			rewriteCondition(status, cmapi.CertificateConditionReady, readyFinding)
			rewritten = append(rewritten, "Ready="+readyFinding.reason)
			if firstReason == "" {
				firstReason = readyFinding.reason
			}
		} else {
			keepReady(status, in.Old, ready, in.Now)
			vetoed = true
			// Readiness wrote Ready=False/MissingData while the issuance
			// was still running, so the write ending it carries that
			// condition and comes here instead of completeIssuance.
			if CompletesIssuance(in.Old, in.New) {
				endKeyManagerPart(status)
			}
		}
	}
	if view.strict {
		restoreTimes(status, in.Old, in.New, view)
	}

	unchanged := in.Old != nil && apiequality.Semantic.DeepEqual(*status, in.Old.Status)
	if len(rewritten) > 0 {
		msg := fmt.Sprintf("genuine reason passed: %s", strings.Join(rewritten, ", "))
		if vetoed {
			msg += "; redaction-only transitions dropped"
		}
		return Decision{Outcome: PassRewritten, Reason: firstReason, Message: msg, Status: status, Unchanged: unchanged}
	}
	return Decision{
		Outcome:   Veto,
		Reason:    DecisionRedactionOnly,
		Message:   "change caused only by the private key being held in Vault; dropped",
		Status:    status,
		Unchanged: unchanged,
	}
}

func pass(reason, message string) Decision {
	return Decision{Outcome: Pass, Reason: reason, Message: message}
}

func condition(crt *cmapi.Certificate, t cmapi.CertificateConditionType) *cmapi.CertificateCondition {
	if crt == nil {
		return nil
	}
	for i := range crt.Status.Conditions {
		if crt.Status.Conditions[i].Type == t {
			return &crt.Status.Conditions[i]
		}
	}
	return nil
}

// redactionReason reports whether a condition's reason can be caused by an
// empty tls.key. With strictMessage, SecretMismatch counts only when its
// message is about the private key (the spec check on tls.crt shares the
// reason but is independent of the key).
func redactionReason(c *cmapi.CertificateCondition, strictMessage bool) bool {
	switch c.Reason {
	case ReasonMissingData, ReasonInvalidKeyPair:
		return true
	case ReasonSecretMismatch:
		return !strictMessage || strings.Contains(strings.ToLower(c.Message), "private key")
	default:
		return false
	}
}

// issuingTransition returns new's Issuing condition if it is True with a
// redaction-induced reason or DoesNotExist and old had no Issuing=True.
func issuingTransition(old, new *cmapi.Certificate, strictMessage bool) *cmapi.CertificateCondition {
	c := condition(new, cmapi.CertificateConditionIssuing)
	if c == nil || c.Status != cmmeta.ConditionTrue || (!redactionReason(c, strictMessage) && c.Reason != ReasonDoesNotExist) {
		return nil
	}
	if o := condition(old, cmapi.CertificateConditionIssuing); o != nil && o.Status == cmmeta.ConditionTrue {
		return nil
	}
	return c
}

// readyTransition returns new's Ready condition if it is False with a
// redaction-induced reason, whatever old said. Ready=False is re-decided on
// every update that carries it, not only when it first appears: a
// Certificate can be left Ready=False/MissingData legitimately (custody
// record missing, so the guard passed and cert-manager re-issued), and
// cert-manager never re-sends an unchanged condition, so the next status
// write of any controller is the only chance to put Ready right again.
func readyTransition(_, new *cmapi.Certificate, strictMessage bool) *cmapi.CertificateCondition {
	c := condition(new, cmapi.CertificateConditionReady)
	if c == nil || c.Status != cmmeta.ConditionFalse || !redactionReason(c, strictMessage) {
		return nil
	}
	return c
}
