// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// GuardReasonMissingData comes from SecretIsMissingData: tls.key (or
	// tls.crt in strict mode, or all data) is empty.
	GuardReasonMissingData = "MissingData"
	// GuardReasonInvalidKeyPair comes from SecretPublicKeysDiffer,
	// SecretPrivateKeyMismatchesSpec and
	// SecretPublicKeyDiffersFromCurrentCertificateRequest when tls.key does
	// not decode or does not match tls.crt.
	GuardReasonInvalidKeyPair = "InvalidKeyPair"
	// GuardReasonSecretMismatch comes from SecretPrivateKeyMismatchesSpec and
	// SecretPublicKeyDiffersFromCurrentCertificateRequest (both about the
	// private key), but also from the spec check on tls.crt when there is no
	// current CertificateRequest, which has nothing to do with the key. Only
	// the key-related ones (their message mentions the private key) are
	// considered redaction-induced.
	GuardReasonSecretMismatch = "SecretMismatch"
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

// Reasons a GuardDecision carries when the guard does not take a side on
// cert-manager's change (GuardPass) or when it drops it (GuardVeto). The set is
// closed so that it can be logged and counted without unbounded cardinality.
const (
	// GuardDecisionNotRedactionRelated: the update neither newly sets
	// Issuing=True nor carries Ready=False with a redaction-induced reason.
	GuardDecisionNotRedactionRelated = "NotRedactionRelated"
	// GuardDecisionSecretNotFound: the target Secret is not known.
	GuardDecisionSecretNotFound = "SecretNotFound"
	// GuardDecisionNotInCustody: the Secret does not carry Keyward's custody
	// label and annotations, so an empty key is not Keyward's doing.
	GuardDecisionNotInCustody = "NotInCustody"
	// GuardDecisionCustodyRecordNotFound: Vault holds no record for the Secret.
	GuardDecisionCustodyRecordNotFound = "CustodyRecordNotFound"
	// GuardDecisionCustodyRecordMismatch: the record does not describe the
	// certificate in the Secret (serial, key fingerprint, validity or owner).
	GuardDecisionCustodyRecordMismatch = "CustodyRecordMismatch"
	// GuardDecisionUnverifiable: a check could not be run on public data
	// (strict mode without a current CertificateRequest), so cert-manager's
	// judgement stands.
	GuardDecisionUnverifiable = "Unverifiable"
	// GuardDecisionRedactionOnly: every check passed on public data; the
	// change was caused by the empty tls.key alone and is dropped.
	GuardDecisionRedactionOnly = "RedactionOnly"
)

// GuardReadyMessage is the Ready=True message the guard writes when it keeps a
// Certificate ready whose Secret has had its private key moved to Vault.
const GuardReadyMessage = "Certificate is up to date and has not expired; its private key is held in Vault by Keyward, so tls.key in the Secret is intentionally empty"

// GuardRedactionReasons returns the cert-manager condition reasons that an
// emptied tls.key can cause (see GuardReasonMissingData and friends). The
// webhook's CEL matchConditions are built from this list, so the apiserver
// and DecideGuard agree on which updates are worth a look.
func GuardRedactionReasons() []string {
	return []string{GuardReasonMissingData, GuardReasonInvalidKeyPair, GuardReasonSecretMismatch}
}

// GuardOutcome says what the admission webhook does with cert-manager's update.
type GuardOutcome int

const (
	// GuardPass lets the update through unmodified; GuardDecision.Status is nil.
	GuardPass GuardOutcome = iota
	// GuardPassRewritten lets a genuine transition through, but with the
	// reason and message that say why (e.g. Renewing instead of MissingData).
	// Redaction-only transitions in the same update are still dropped.
	GuardPassRewritten
	// GuardVeto drops every redaction-induced transition in the update:
	// Issuing=True is not added, Ready=False is replaced by Ready=True.
	GuardVeto
)

// String returns the outcome as a lower-case snake-case word suitable as a
// metric label value.
func (o GuardOutcome) String() string {
	switch o {
	case GuardPass:
		return "pass"
	case GuardPassRewritten:
		return "pass_rewritten"
	case GuardVeto:
		return "veto"
	default:
		return fmt.Sprintf("GuardOutcome(%d)", int(o))
	}
}

// GuardInput is everything DecideGuard looks at. It is public data only: no
// private key is ever needed to decide.
type GuardInput struct {
	// Old is the Certificate as stored; New is what cert-manager wants to
	// store. New must not be nil for the guard to act.
	Old, New *cmapi.Certificate
	// Secret is the Certificate's target Secret as seen by the caller (from
	// an informer cache); nil if it does not exist.
	Secret *corev1.Secret
	// Custody is the custody record's metadata for the Secret, nil if the
	// store has no record.
	Custody *Metadata
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

// GuardDecision is DecideGuard's answer.
type GuardDecision struct {
	// Outcome is what to do with the update.
	Outcome GuardOutcome
	// Reason is a short CamelCase word from a closed set: one of the
	// GuardDecision* constants, or for GuardPassRewritten the cert-manager
	// reason that was written (Renewing, Expired, RequestChanged, ...).
	Reason string
	// Message explains the decision for logs; it contains no secret data.
	Message string
	// Status is the complete status the Certificate must be stored with
	// (a modified copy of New.Status); nil when Outcome is GuardPass.
	Status *cmapi.CertificateStatus
	// Unchanged reports that Status equals Old's status: once patched, the
	// update changes nothing. The apiserver records field ownership for the
	// requester before mutating admission runs, so a caller should then also
	// keep Old's managedFields; otherwise that bookkeeping alone stores a new
	// version, which wakes cert-manager's controllers to try again.
	Unchanged bool
}

// GuardCandidate reports whether the update from old to new newly sets
// Issuing=True, or carries Ready=False, with one of GuardRedactionReasons. It is the Go
// twin of the webhook's CEL matchConditions and lets callers skip all lookups
// for updates DecideGuard would pass anyway. old may be nil (no prior state).
func GuardCandidate(old, new *cmapi.Certificate) bool {
	if new == nil {
		return false
	}
	return guardIssuingTransition(old, new, false) != nil || guardReadyTransition(old, new, false) != nil || GuardCompletesIssuance(old, new)
}

// GuardCompletesIssuance reports whether the update is the one that ends an
// issuance (cert-manager's issuing controller, right after it wrote the
// Secret): old had Issuing=True, new has conditions but no Issuing one, and
// new is not Ready=True. When the new certificate is in custody and sound, DecideGuard
// makes it Ready=True in that same write, with the validity and renewal time
// cert-manager's readiness controller would set; otherwise readiness would
// first write Ready=False/MissingData, have it rewritten to True, and that
// extra version would wake every cert-manager controller once more.
func GuardCompletesIssuance(old, new *cmapi.Certificate) bool {
	if old == nil || new == nil {
		return false
	}
	if o := guardCondition(old, cmapi.CertificateConditionIssuing); o == nil || o.Status != cmmeta.ConditionTrue {
		return false
	}
	// Success removes the condition; a failed issuance sets it False.
	if len(new.Status.Conditions) == 0 || guardCondition(new, cmapi.CertificateConditionIssuing) != nil {
		return false
	}
	r := guardCondition(new, cmapi.CertificateConditionReady)
	return r == nil || r.Status != cmmeta.ConditionTrue
}

// DecideGuard decides whether a Certificate status update made by
// cert-manager's trigger or readiness controller is caused only by Keyward's
// redaction of tls.key. It is pure: same input, same decision.
//
// Contract:
//   - Updates that neither newly set Issuing=True nor carry Ready=False with
//     a redaction-induced reason, nor end an issuance
//     (GuardCompletesIssuance), pass untouched (ManuallyTriggered,
//     DoesNotExist, IncorrectIssuer, ...).
//   - The end of an issuance whose new certificate is in custody, matches
//     its record and has no genuine reason against it is made Ready=True in
//     that write (GuardPassRewritten, reason Ready); otherwise it passes
//     untouched.
//   - Secrets not in custody, without a custody record, or whose record does
//     not describe the certificate they hold pass untouched: cert-manager
//     re-issues, which costs one issuance and never loses a key.
//   - Otherwise the checks cert-manager could not reach are re-run on public
//     data. A genuine reason passes with that reason (GuardPassRewritten);
//     none drops the change (GuardVeto): Issuing keeps its old state, Ready
//     is kept (or made) True with GuardReadyMessage and the old
//     lastTransitionTime.
//   - In strict mode (no tls.crt in the Secret) notBefore, notAfter and
//     renewalTime are restored from the verified annotations whenever the
//     status is patched, since cert-manager clears them.
func DecideGuard(in GuardInput) GuardDecision {
	if in.New == nil {
		return guardPass(GuardDecisionNotRedactionRelated, "no Certificate in the update")
	}
	issuing := guardIssuingTransition(in.Old, in.New, true)
	ready := guardReadyTransition(in.Old, in.New, true)
	completion := issuing == nil && ready == nil && GuardCompletesIssuance(in.Old, in.New)
	if issuing == nil && ready == nil && !completion {
		return guardPass(GuardDecisionNotRedactionRelated, "update neither newly sets Issuing=True nor carries Ready=False for a redaction-induced reason")
	}
	if in.Secret == nil {
		return guardPass(GuardDecisionSecretNotFound, fmt.Sprintf("Secret %q not found", in.New.Spec.SecretName))
	}
	if !guardInCustody(in.Secret) {
		return guardPass(GuardDecisionNotInCustody, fmt.Sprintf("Secret %q is not in Keyward custody", in.Secret.Name))
	}
	if in.Custody == nil {
		return guardPass(GuardDecisionCustodyRecordNotFound, fmt.Sprintf("no custody record for Secret %q", in.Secret.Name))
	}
	view, mismatch := guardViewCertificate(in.New, in.Secret, *in.Custody)
	if mismatch != "" {
		return guardPass(GuardDecisionCustodyRecordMismatch, mismatch)
	}

	chain, unverifiable := guardCheckChain(in, view)
	if unverifiable != "" {
		return guardPass(GuardDecisionUnverifiable, unverifiable)
	}
	var readyFinding, issuingFinding *guardFinding
	switch {
	case chain != nil:
		readyFinding, issuingFinding = chain, chain
	default:
		if in.Now.After(view.notAfter) {
			expired := &guardFinding{
				reason:  cmReasonExpired,
				message: fmt.Sprintf("Certificate expired on %s (its private key is held in Vault)", view.notAfter.UTC().Format(time.RFC1123)),
			}
			readyFinding, issuingFinding = expired, expired
		} else {
			issuingFinding = guardRenewalDue(in, view)
		}
	}

	if completion {
		return guardCompleteIssuance(in, view, readyFinding)
	}

	status := in.New.Status.DeepCopy()
	var rewritten []string
	firstReason := ""
	vetoed := false
	if issuing != nil {
		if issuingFinding != nil {
			guardRewriteCondition(status, cmapi.CertificateConditionIssuing, issuingFinding)
			rewritten = append(rewritten, "Issuing="+issuingFinding.reason)
			firstReason = issuingFinding.reason
		} else {
			guardRestoreIssuing(status, in.Old)
			vetoed = true
		}
	}
	if ready != nil {
		if readyFinding != nil {
			guardRewriteCondition(status, cmapi.CertificateConditionReady, readyFinding)
			rewritten = append(rewritten, "Ready="+readyFinding.reason)
			if firstReason == "" {
				firstReason = readyFinding.reason
			}
		} else {
			guardKeepReady(status, in.Old, ready, in.Now)
			vetoed = true
		}
	}
	if view.strict {
		guardRestoreTimes(status, in.Old, in.New, view)
	}

	unchanged := in.Old != nil && apiequality.Semantic.DeepEqual(*status, in.Old.Status)
	if len(rewritten) > 0 {
		msg := fmt.Sprintf("genuine reason passed: %s", strings.Join(rewritten, ", "))
		if vetoed {
			msg += "; redaction-only transitions dropped"
		}
		return GuardDecision{Outcome: GuardPassRewritten, Reason: firstReason, Message: msg, Status: status, Unchanged: unchanged}
	}
	return GuardDecision{
		Outcome:   GuardVeto,
		Reason:    GuardDecisionRedactionOnly,
		Message:   "change caused only by the private key being held in Vault; dropped",
		Status:    status,
		Unchanged: unchanged,
	}
}

// guardCompleteIssuance decides the write that ends an issuance whose new
// certificate is in custody and matches its record: with no genuine reason
// against it, the Certificate becomes Ready=True in that write, with
// notBefore, notAfter and renewalTime as the readiness controller computes
// them, so readiness finds nothing to change but the redaction-induced
// Ready=False, which the guard then drops as a no-op. With a genuine reason
// (expired, spec or chain mismatch) the write passes untouched and cert-manager's
// readiness controller reports it, as without Keyward.
func guardCompleteIssuance(in GuardInput, view guardCertView, readyFinding *guardFinding) GuardDecision {
	if readyFinding != nil {
		return guardPass(readyFinding.reason, "issuance completed, but not ready: "+readyFinding.message)
	}
	status := in.New.Status.DeepCopy()
	t := metav1.NewTime(in.Now.Truncate(time.Second))
	ready := cmapi.CertificateCondition{
		Type:               cmapi.CertificateConditionReady,
		Status:             cmmeta.ConditionTrue,
		Reason:             cmReasonReady,
		Message:            GuardReadyMessage,
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
	guardRestoreTimes(status, in.Old, in.New, view)
	return GuardDecision{
		Outcome: GuardPassRewritten,
		Reason:  cmReasonReady,
		Message: "issuance completed with the private key in custody; Ready=True set in the same write",
		Status:  status,
	}
}

func guardPass(reason, message string) GuardDecision {
	return GuardDecision{Outcome: GuardPass, Reason: reason, Message: message}
}

// guardFinding is a genuine reason to (re-)issue or to be not ready.
type guardFinding struct {
	reason, message string
}

// guardCertView is what the guard knows about the certificate in the Secret,
// verified against the custody record.
type guardCertView struct {
	// strict: tls.crt is not in the Secret; the view comes from annotations.
	strict bool
	// cert is the parsed leaf (nil in strict mode).
	cert *x509.Certificate
	// keySHA256 is the lower-case hex SHA-256 of the key's SubjectPublicKeyInfo.
	keySHA256           string
	notBefore, notAfter time.Time
}

func guardCondition(crt *cmapi.Certificate, t cmapi.CertificateConditionType) *cmapi.CertificateCondition {
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

// guardRedactionReason reports whether a condition's reason can be caused by an
// empty tls.key. With strictMessage, SecretMismatch counts only when its
// message is about the private key (the spec check on tls.crt shares the
// reason but is independent of the key).
func guardRedactionReason(c *cmapi.CertificateCondition, strictMessage bool) bool {
	switch c.Reason {
	case GuardReasonMissingData, GuardReasonInvalidKeyPair:
		return true
	case GuardReasonSecretMismatch:
		return !strictMessage || strings.Contains(strings.ToLower(c.Message), "private key")
	default:
		return false
	}
}

// guardIssuingTransition returns new's Issuing condition if it is True with a
// redaction-induced reason and old had no Issuing=True.
func guardIssuingTransition(old, new *cmapi.Certificate, strictMessage bool) *cmapi.CertificateCondition {
	c := guardCondition(new, cmapi.CertificateConditionIssuing)
	if c == nil || c.Status != cmmeta.ConditionTrue || !guardRedactionReason(c, strictMessage) {
		return nil
	}
	if o := guardCondition(old, cmapi.CertificateConditionIssuing); o != nil && o.Status == cmmeta.ConditionTrue {
		return nil
	}
	return c
}

// guardReadyTransition returns new's Ready condition if it is False with a
// redaction-induced reason, whatever old said. Ready=False is re-decided on
// every update that carries it, not only when it first appears: a
// Certificate can be left Ready=False/MissingData legitimately (custody
// record missing, so the guard passed and cert-manager re-issued), and
// cert-manager never re-sends an unchanged condition, so the next status
// write of any controller is the only chance to put Ready right again.
func guardReadyTransition(_, new *cmapi.Certificate, strictMessage bool) *cmapi.CertificateCondition {
	c := guardCondition(new, cmapi.CertificateConditionReady)
	if c == nil || c.Status != cmmeta.ConditionFalse || !guardRedactionReason(c, strictMessage) {
		return nil
	}
	return c
}

// guardInCustody reports whether Keyward has marked the Secret as holding its
// key in Vault.
func guardInCustody(s *corev1.Secret) bool {
	return s.Labels[LabelCustody] == LabelCustodyVault &&
		s.Annotations[AnnotationCustodyPath] != "" &&
		s.Annotations[AnnotationKeySHA256] != ""
}

// guardViewCertificate builds the verified view of the Secret's certificate. A
// non-empty second result says why the custody record does not match.
func guardViewCertificate(crt *cmapi.Certificate, s *corev1.Secret, meta Metadata) (guardCertView, string) {
	ann := s.Annotations
	annKey := strings.ToLower(ann[AnnotationKeySHA256])
	if !strings.EqualFold(annKey, meta.KeySHA256) {
		return guardCertView{}, "key fingerprint annotation differs from the custody record"
	}
	if meta.CertificateName != "" && meta.CertificateName != crt.Name {
		return guardCertView{}, fmt.Sprintf("custody record belongs to Certificate %q", meta.CertificateName)
	}
	if annSerial, ok := ann[AnnotationSerial]; ok && !guardSerialEqual(annSerial, meta.Serial) {
		return guardCertView{}, "serial annotation differs from the custody record"
	}

	if pemCrt := s.Data[corev1.TLSCertKey]; len(pemCrt) > 0 {
		cert, err := pki.DecodeX509CertificateBytes(pemCrt)
		if err != nil {
			return guardCertView{}, "tls.crt does not decode"
		}
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		certKey := hex.EncodeToString(sum[:])
		if certKey != annKey {
			return guardCertView{}, "tls.crt's public key differs from the custody record's key fingerprint"
		}
		if cert.SerialNumber == nil || !guardSerialEqual(cert.SerialNumber.Text(16), meta.Serial) {
			return guardCertView{}, "tls.crt's serial differs from the custody record"
		}
		if !meta.NotAfter.IsZero() && !guardSameSecond(meta.NotAfter, cert.NotAfter) {
			return guardCertView{}, "tls.crt's notAfter differs from the custody record"
		}
		return guardCertView{cert: cert, keySHA256: certKey, notBefore: cert.NotBefore, notAfter: cert.NotAfter}, ""
	}

	// Strict mode: tls.crt was removed too; Keyward's annotations stand in for it.
	annSerial, ok := ann[AnnotationSerial]
	if !ok || !guardSerialEqual(annSerial, meta.Serial) {
		return guardCertView{}, "strict mode: serial annotation missing or different from the custody record"
	}
	notBefore, err1 := time.Parse(time.RFC3339Nano, ann[AnnotationNotBefore])
	notAfter, err2 := time.Parse(time.RFC3339Nano, ann[AnnotationNotAfter])
	if err1 != nil || err2 != nil || !notBefore.Before(notAfter) {
		return guardCertView{}, "strict mode: validity annotations missing or invalid"
	}
	if (!meta.NotBefore.IsZero() && !guardSameSecond(meta.NotBefore, notBefore)) ||
		(!meta.NotAfter.IsZero() && !guardSameSecond(meta.NotAfter, notAfter)) {
		return guardCertView{}, "strict mode: validity annotations differ from the custody record"
	}
	return guardCertView{strict: true, keySHA256: annKey, notBefore: notBefore, notAfter: notAfter}, ""
}

// guardSerialEqual compares two hex serial numbers, ignoring case, colons,
// a 0x prefix and leading zeros. Unparsable or empty serials never match.
func guardSerialEqual(a, b string) bool {
	x, okA := guardParseSerial(a)
	y, okB := guardParseSerial(b)
	return okA && okB && x.Cmp(y) == 0
}

func guardParseSerial(s string) (*big.Int, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" || len(s) > 256 {
		return nil, false
	}
	return new(big.Int).SetString(s, 16)
}

// guardSameSecond compares times at the resolution of X.509 validity and of
// metav1.Time (seconds).
func guardSameSecond(a, b time.Time) bool {
	return a.Unix() == b.Unix()
}

// guardCheckChain re-runs, in cert-manager's order, the trigger/readiness
// checks that come after the private-key checks and do not need the key:
// issuer annotations, certificate-name annotation, key type and size, the
// current request's public key, and the spec. It returns the first genuine
// finding, or a non-empty reason why the checks cannot be run on public data.
func guardCheckChain(in GuardInput, view guardCertView) (*guardFinding, string) {
	crt, s := in.New, in.Secret
	if !apiutil.SecretIssuerAnnotationsMatch(s, crt.Spec.IssuerRef) {
		return &guardFinding{
			reason: cmReasonIncorrectIssuer,
			message: fmt.Sprintf("Issuing certificate as Secret was previously issued by %s/%s (group %q), not by the Certificate's issuer",
				s.Annotations[cmapi.IssuerKindAnnotationKey], s.Annotations[cmapi.IssuerNameAnnotationKey], s.Annotations[cmapi.IssuerGroupAnnotationKey]),
		}, ""
	}
	if name, ok := s.Annotations[cmapi.CertificateNameKey]; ok && name != crt.Name {
		return &guardFinding{
			reason:  cmReasonIncorrectCertificate,
			message: fmt.Sprintf("Secret was issued for Certificate %q", name),
		}, ""
	}

	// The public key of the pair held in Vault: from tls.crt, or in strict
	// mode from the current request's CSR once its fingerprint proves it is
	// the same key.
	var pub crypto.PublicKey
	var csr *x509.CertificateRequest
	current := in.CurrentRequest
	if current == nil && view.strict {
		current, csr = guardRequestForKey(in.Requests, view.keySHA256)
	}
	if current != nil && csr == nil {
		var err error
		csr, err = pki.DecodeX509CertificateRequestBytes(current.Spec.Request)
		if err != nil {
			return &guardFinding{
				reason:  cmReasonInvalidCertificateRequest,
				message: fmt.Sprintf("Current CertificateRequest %q does not decode: %v", current.Name, err),
			}, ""
		}
	}
	switch {
	case view.cert != nil:
		pub = view.cert.PublicKey
	case csr != nil && guardSPKISHA256(csr.RawSubjectPublicKeyInfo) == view.keySHA256:
		pub = csr.PublicKey
	case csr == nil:
		return nil, "strict mode without a CertificateRequest for the key in custody: the key type and the spec cannot be checked on public data"
	}

	if pub != nil {
		if violations := guardPublicKeyMatchesSpec(pub, crt.Spec); len(violations) > 0 {
			return &guardFinding{
				reason:  GuardReasonSecretMismatch,
				message: fmt.Sprintf("Key pair held in Vault is not up to date for spec: %v", violations),
			}, ""
		}
	}
	if csr != nil {
		if guardSPKISHA256(csr.RawSubjectPublicKeyInfo) != view.keySHA256 {
			return &guardFinding{
				reason:  GuardReasonSecretMismatch,
				message: fmt.Sprintf("Key pair held in Vault does not match the current CertificateRequest %q", current.Name),
			}, ""
		}
		// As cert-manager does, a request that cannot be compared does not
		// trigger a re-issuance on its own.
		if violations, err := pki.RequestMatchesSpec(current, crt.Spec); err == nil && len(violations) > 0 {
			return &guardFinding{
				reason:  cmReasonRequestChanged,
				message: fmt.Sprintf("Fields on existing CertificateRequest resource not up to date: %v", violations),
			}, ""
		}
		return nil, ""
	}
	//nolint:staticcheck // cert-manager's own fallback when the current request is gone.
	if violations := pki.FuzzyX509AltNamesMatchSpec(view.cert, crt.Spec); len(violations) > 0 {
		return &guardFinding{
			reason:  GuardReasonSecretMismatch,
			message: fmt.Sprintf("Issuing certificate as the issued certificate is not up to date for spec: %v", violations),
		}, ""
	}
	return nil, ""
}

// guardRequestForKey returns the request with the highest revision among
// those whose CSR carries the key with the given fingerprint, and its CSR.
func guardRequestForKey(reqs []*cmapi.CertificateRequest, keySHA256 string) (*cmapi.CertificateRequest, *x509.CertificateRequest) {
	var (
		best     *cmapi.CertificateRequest
		bestCSR  *x509.CertificateRequest
		bestRevN = -1
	)
	for _, r := range reqs {
		if r == nil {
			continue
		}
		csr, err := pki.DecodeX509CertificateRequestBytes(r.Spec.Request)
		if err != nil || guardSPKISHA256(csr.RawSubjectPublicKeyInfo) != keySHA256 {
			continue
		}
		rev, err := strconv.Atoi(r.Annotations[cmapi.CertificateRequestRevisionAnnotationKey])
		if err != nil {
			rev = 0
		}
		if rev > bestRevN {
			best, bestCSR, bestRevN = r, csr, rev
		}
	}
	return best, bestCSR
}

func guardSPKISHA256(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

// guardPublicKeyMatchesSpec lists the spec.privateKey fields the public key
// does not satisfy, with cert-manager's defaults (RSA 2048, ECDSA P-256).
// Unlike pki.PrivateKeyMatchesSpec it needs only the public half and never
// panics on an unknown algorithm.
func guardPublicKeyMatchesSpec(pub crypto.PublicKey, spec cmapi.CertificateSpec) []string {
	var alg cmapi.PrivateKeyAlgorithm
	size := 0
	if spec.PrivateKey != nil {
		alg, size = spec.PrivateKey.Algorithm, spec.PrivateKey.Size
	}
	switch alg {
	case "", cmapi.RSAKeyAlgorithm:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k.N == nil {
			return []string{"spec.privateKey.algorithm"}
		}
		if size <= 0 {
			size = pki.MinRSAKeySize
		}
		if k.N.BitLen() != size {
			return []string{"spec.privateKey.size"}
		}
	case cmapi.ECDSAKeyAlgorithm:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve == nil {
			return []string{"spec.privateKey.algorithm"}
		}
		if size <= 0 {
			size = pki.ECCurve256
		}
		if k.Curve.Params().BitSize != size {
			return []string{"spec.privateKey.size"}
		}
	case cmapi.Ed25519KeyAlgorithm:
		if _, ok := pub.(ed25519.PublicKey); !ok {
			return []string{"spec.privateKey.algorithm"}
		}
	default:
		return []string{"spec.privateKey.algorithm"}
	}
	return nil
}

// guardRenewalDue reports a genuine Renewing reason when the certificate's
// renewal time has come. The renewal time is the one cert-manager's readiness
// controller stored (it may come from ACME ARI) when it belongs to this very
// certificate, else it is computed from the validity with pki.RenewalTime,
// as cert-manager's trigger does.
func guardRenewalDue(in GuardInput, view guardCertView) *guardFinding {
	spec := in.New.Spec
	if spec.Renewal != nil && spec.Renewal.Policy == cmapi.CertificateRenewalPolicyDisabled {
		return nil
	}
	var due []time.Time
	if in.Old != nil && in.Old.Status.RenewalTime != nil && in.Old.Status.NotAfter != nil &&
		guardSameSecond(in.Old.Status.NotAfter.Time, view.notAfter) {
		due = append(due, in.Old.Status.RenewalTime.Time)
	}
	// On error pki.RenewalTime still returns its best estimate; cert-manager
	// renews on that estimate too (WindowError becomes Renewing).
	if rt, _ := pki.RenewalTime(view.notBefore, view.notAfter, spec.RenewBefore, spec.RenewBeforePercentage, spec.Renewal); rt != nil {
		due = append(due, rt.Time)
	}
	if len(due) == 0 {
		return nil
	}
	at := slices.MinFunc(due, func(a, b time.Time) int { return a.Compare(b) })
	if in.Now.Before(at) {
		return nil
	}
	return &guardFinding{
		reason:  cmReasonRenewing,
		message: fmt.Sprintf("Renewing certificate as renewal was scheduled at %s (its private key is held in Vault)", at.UTC().Format(time.RFC3339)),
	}
}

// guardRewriteCondition replaces the reason and message of the condition of
// type t, keeping status, lastTransitionTime and observedGeneration.
func guardRewriteCondition(st *cmapi.CertificateStatus, t cmapi.CertificateConditionType, f *guardFinding) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			st.Conditions[i].Reason = f.reason
			st.Conditions[i].Message = f.message
		}
	}
}

// guardRestoreIssuing undoes the Issuing=True transition: the condition goes
// back to what old had, or disappears if old had none.
func guardRestoreIssuing(st *cmapi.CertificateStatus, old *cmapi.Certificate) {
	prev := guardCondition(old, cmapi.CertificateConditionIssuing)
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

// guardKeepReady replaces the redaction-induced Ready=False with Ready=True:
// old's Ready=True condition (lastTransitionTime kept) or, if old was not
// ready, a new one that transitions now.
func guardKeepReady(st *cmapi.CertificateStatus, old *cmapi.Certificate, proposed *cmapi.CertificateCondition, now time.Time) {
	var c cmapi.CertificateCondition
	if prev := guardCondition(old, cmapi.CertificateConditionReady); prev != nil && prev.Status == cmmeta.ConditionTrue {
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
	c.Message = GuardReadyMessage
	c.ObservedGeneration = proposed.ObservedGeneration
	for i := range st.Conditions {
		if st.Conditions[i].Type == cmapi.CertificateConditionReady {
			st.Conditions[i] = c
		}
	}
}

// guardRestoreTimes keeps notBefore, notAfter and renewalTime truthful in
// strict mode, where cert-manager's readiness controller cannot read tls.crt
// and clears them.
func guardRestoreTimes(st *cmapi.CertificateStatus, old, new *cmapi.Certificate, view guardCertView) {
	nb, na := metav1.NewTime(view.notBefore.Truncate(time.Second)), metav1.NewTime(view.notAfter.Truncate(time.Second))
	st.NotBefore, st.NotAfter = &nb, &na

	sameCert := func(s cmapi.CertificateStatus) bool {
		return s.RenewalTime != nil && s.NotAfter != nil && guardSameSecond(s.NotAfter.Time, view.notAfter)
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
