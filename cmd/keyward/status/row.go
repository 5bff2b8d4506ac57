// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package status

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/guard"
)

// Custody states of a row's target Secret.
const (
	CustodyInCustody  = "in custody"
	CustodySecretGone = "secret missing"
	CustodyKeyInAPI   = "key in the API"
	CustodyNone       = "not in custody"
	CustodyOpaque     = "opaque target"
)

// Store states: what Vault's current custody record says about the
// placeholder.
const (
	StoreNotChecked = "not checked"
	StoreMatches    = "matches"
	StoreMissing    = "record missing"
	StoreNewer      = "record newer"
	StoreOlder      = "record older"
	StoreDiffers    = "record differs"
	StoreTorn       = "record torn"
	// StoreOtherPath: the placeholder names another record than this
	// cluster's (another mount, prefix or cluster name); not looked up.
	StoreOtherPath     = "other path"
	StoreNotApplicable = "-" // nothing to check: the Secret is not a placeholder
)

// maxEvents bounds the warnings shown per row.
const maxEvents = 3

// SecretView is what status keeps of a target Secret: public facts only.
// It is built by ViewSecret from the Secret's metadata, or from the whole
// Secret when it is not a placeholder; the data itself is never kept.
type SecretView struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	// Type is the Secret's type; empty when only metadata was read.
	Type corev1.SecretType
	// KeyInAPI: tls.key is not empty (known only when the data was read).
	KeyInAPI bool
	// Serial and KeySHA256 come from tls.crt (public), when it was read.
	Serial, KeySHA256 string
}

// ViewSecret reduces a Secret to a SecretView: s gives its name, labels and
// annotations; full, when not nil, is the whole Secret (read with a GET),
// whose type, tls.key presence and tls.crt serial and fingerprint are
// kept. Nothing else of its data is.
func ViewSecret(s metav1.Object, full *corev1.Secret) SecretView {
	v := SecretView{Name: s.GetName(), Labels: s.GetLabels(), Annotations: s.GetAnnotations()}
	if full == nil {
		return v
	}
	v.Type = full.Type
	v.KeyInAPI = len(full.Data[corev1.TLSPrivateKeyKey]) > 0
	if b, _ := pem.Decode(full.Data[corev1.TLSCertKey]); b != nil {
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			v.Serial, v.KeySHA256 = custody.SerialHex(c), custody.Fingerprint(c.RawSubjectPublicKeyInfo)
		}
	}
	return v
}

// StoreView is the answer of the custody store for one Secret; nil when
// Vault was not checked.
type StoreView struct {
	// Path is where this cluster's record of the Secret is (the store's
	// Path); a placeholder naming another path is not looked up.
	Path string
	// Missing: the store has no current record.
	Missing bool
	Meta    custody.Metadata
}

// Event is one Kubernetes event about a Certificate or its Secret.
type Event struct {
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Object  string    `json:"object"`
	Time    time.Time `json:"time"`
	Count   int32     `json:"count,omitempty"`
}

// Input is everything BuildRow looks at.
type Input struct {
	Certificate *cmapi.Certificate
	// Secret is nil when the target Secret does not exist.
	Secret *SecretView
	// Store is nil when Vault was not checked.
	Store *StoreView
	// Events are the events about the Certificate and its Secret, any order.
	Events []Event
}

// Guard is the custody guard's last recorded decision.
type Guard struct {
	// Event is the event reason (guard.EventReasonKept, ...).
	Event string `json:"event"`
	// Reason is the decision's reason (RedactionOnly, Renewing, ...).
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// Row is one Certificate's status. Its JSON form is `keyward status -o
// json`'s contract: fields are only ever added.
type Row struct {
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	Ready       string `json:"ready"`
	ReadyReason string `json:"readyReason,omitempty"`
	SecretName  string `json:"secretName"`
	// Custody is one of the Custody* states.
	Custody        string     `json:"custody"`
	CustodyPath    string     `json:"custodyPath,omitempty"`
	CustodyVersion int        `json:"custodyVersion,omitempty"`
	KeySHA256      string     `json:"keySHA256,omitempty"`
	Serial         string     `json:"serial,omitempty"`
	ScrubbedAt     string     `json:"scrubbedAt,omitempty"`
	ScrubbedBy     string     `json:"scrubbedBy,omitempty"`
	Store          string     `json:"store"`
	StoreVersion   int        `json:"storeVersion,omitempty"`
	NotAfter       *time.Time `json:"notAfter,omitempty"`
	RenewalTime    *time.Time `json:"renewalTime,omitempty"`
	Guard          *Guard     `json:"guard,omitempty"`
	Warnings       []Event    `json:"warnings,omitempty"`
	// Problems say, in words, what needs attention; empty when none.
	Problems []string `json:"problems,omitempty"`
}

// BuildRow computes a Certificate's row. It is pure.
func BuildRow(in Input) Row {
	crt := in.Certificate
	r := Row{Namespace: crt.Namespace, Name: crt.Name, SecretName: crt.Spec.SecretName, Ready: "Unknown", Store: StoreNotApplicable}
	for _, c := range crt.Status.Conditions {
		if c.Type == cmapi.CertificateConditionReady {
			r.Ready, r.ReadyReason = string(c.Status), c.Reason
		}
	}
	if r.Ready != "True" {
		r.Problems = append(r.Problems, fmt.Sprintf("not Ready (%s)", orDash(r.ReadyReason)))
	}
	if t := crt.Status.NotAfter; t != nil {
		r.NotAfter = ptrTime(t.Time)
	}
	if t := crt.Status.RenewalTime; t != nil {
		r.RenewalTime = ptrTime(t.Time)
	}
	custodyState(&r, in.Secret)
	if r.Custody == CustodyInCustody {
		storeState(&r, in.Store)
	}
	r.Guard, r.Warnings = events(in.Events)
	return r
}

// custodyState fills the Secret's custody columns and problems.
func custodyState(r *Row, s *SecretView) {
	switch {
	case s == nil:
		r.Custody = CustodySecretGone
		r.Problems = append(r.Problems, fmt.Sprintf("Secret %s does not exist", r.SecretName))
		return
	case s.Type != "" && s.Type != corev1.SecretTypeTLS && !custody.IsCustodySecretType(s.Type):
		r.Custody = CustodyOpaque
		r.Problems = append(r.Problems, fmt.Sprintf("Secret %s is of type %s: the scrub webhook takes only kubernetes.io/tls Secrets into custody", s.Name, s.Type))
		if s.KeyInAPI {
			r.Problems = append(r.Problems, "its private key is in the Kubernetes API")
		}
		r.Serial, r.KeySHA256 = s.Serial, s.KeySHA256
		return
	}
	p, ok := custody.ParsePlaceholder(&metav1.ObjectMeta{Labels: s.Labels, Annotations: s.Annotations})
	if !ok {
		r.Serial, r.KeySHA256 = s.Serial, s.KeySHA256
		if s.KeyInAPI {
			r.Custody = CustodyKeyInAPI
			r.Problems = append(r.Problems, fmt.Sprintf("Secret %s is not in custody: its private key is in the Kubernetes API", s.Name))
		} else {
			r.Custody = CustodyNone
			r.Problems = append(r.Problems, fmt.Sprintf("Secret %s carries no custody markers", s.Name))
		}
		return
	}
	r.Custody = CustodyInCustody
	r.CustodyPath, r.CustodyVersion, r.KeySHA256, r.Serial = p.Path, p.Version, p.KeySHA256, p.Serial
	r.ScrubbedAt, r.ScrubbedBy = s.Annotations[custody.AnnotationScrubbedAt], s.Annotations[custody.AnnotationScrubbedBy]
	if s.KeyInAPI {
		r.Problems = append(r.Problems, fmt.Sprintf("Secret %s is marked as in custody but still holds a private key", s.Name))
	}
}

// storeState compares Vault's current record with the placeholder.
func storeState(r *Row, st *StoreView) {
	switch {
	case st == nil:
		r.Store = StoreNotChecked
		return
	case st.Path != "" && st.Path != r.CustodyPath:
		r.Store = StoreOtherPath
		r.Problems = append(r.Problems, fmt.Sprintf("the placeholder names custody record %s, this cluster's record is %s (check --custody-mount, --custody-prefix and --cluster-name)", r.CustodyPath, st.Path))
		return
	case st.Missing:
		r.Store = StoreMissing
		r.Problems = append(r.Problems, fmt.Sprintf("custody record %s is missing: the placeholder names a key Vault does not hold", r.CustodyPath))
		return
	}
	r.StoreVersion = st.Meta.Version
	switch {
	case st.Meta.Torn:
		r.Store = StoreTorn
		r.Problems = append(r.Problems, fmt.Sprintf("custody record %s version %d has no matching metadata (a write in progress or interrupted)", r.CustodyPath, st.Meta.Version))
	case st.Meta.Version > r.CustodyVersion:
		r.Store = StoreNewer
		r.Problems = append(r.Problems, fmt.Sprintf("custody record %s is at version %d, the Secret names version %d", r.CustodyPath, st.Meta.Version, r.CustodyVersion))
	case st.Meta.Version < r.CustodyVersion:
		r.Store = StoreOlder
		r.Problems = append(r.Problems, fmt.Sprintf("custody record %s is at version %d, older than the version %d the Secret names", r.CustodyPath, st.Meta.Version, r.CustodyVersion))
	case !strings.EqualFold(st.Meta.KeySHA256, r.KeySHA256) || (r.Serial != "" && !custody.SerialEqual(st.Meta.Serial, r.Serial)):
		r.Store = StoreDiffers
		r.Problems = append(r.Problems, fmt.Sprintf("custody record %s describes another key or certificate than the Secret", r.CustodyPath))
	default:
		r.Store = StoreMatches
	}
}

// events picks the guard's last decision and the latest warnings.
func events(evs []Event) (*Guard, []Event) {
	evs = slices.Clone(evs)
	slices.SortStableFunc(evs, func(a, b Event) int { return b.Time.Compare(a.Time) })
	var g *Guard
	var warnings []Event
	for _, e := range evs {
		if g == nil && slices.Contains(guard.EventReasons(), e.Reason) {
			reason, msg, _ := strings.Cut(e.Message, ": ")
			g = &Guard{Event: e.Reason, Reason: reason, Message: msg, Time: e.Time}
		}
		if e.Type == corev1.EventTypeWarning && len(warnings) < maxEvents {
			warnings = append(warnings, e)
		}
	}
	return g, warnings
}

// HasProblems reports whether any row has a problem.
func HasProblems(rows []Row) bool {
	return slices.ContainsFunc(rows, func(r Row) bool { return len(r.Problems) > 0 })
}

func ptrTime(t time.Time) *time.Time { t = t.UTC(); return &t }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
