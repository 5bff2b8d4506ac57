// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package custody

import (
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations and labels that Keyward puts on a scrubbed (placeholder) Secret.
// They are the only link between a Secret in the API and its custody record,
// so their names are part of Keyward's public contract.
const (
	// AnnotationPath names the custody record, as "<mount>/<prefix>/<namespace>/<secret>".
	AnnotationPath = "keyward.io/custody-path"
	// AnnotationVersion is the custody record version that holds this Secret's key.
	AnnotationVersion = "keyward.io/custody-version"
	// AnnotationKeySHA256 is the key fingerprint (Fingerprint): it identifies
	// the key pair without revealing anything about the private key.
	AnnotationKeySHA256 = "keyward.io/key-sha256"
	// AnnotationScrubbedAt is the RFC 3339 time (nanoseconds) the key was removed.
	AnnotationScrubbedAt = "keyward.io/scrubbed-at"
	// AnnotationScrubbedBy is "webhook" or "watcher": which path removed the key.
	AnnotationScrubbedBy = "keyward.io/scrubbed-by"
	// AnnotationNotBefore and AnnotationNotAfter carry the certificate's validity
	// (RFC 3339) in strict mode, where tls.crt is not kept in the Secret.
	AnnotationNotBefore = "keyward.io/not-before"
	AnnotationNotAfter  = "keyward.io/not-after"
	// AnnotationSerial is the certificate serial number (SerialHex) the custody record holds.
	AnnotationSerial = "keyward.io/serial"

	// LabelCustody is set to LabelCustodyVault on every Secret whose key is in custody.
	LabelCustody      = "keyward.io/custody"
	LabelCustodyVault = "vault"

	// NamespaceLabelCustody on a Namespace opts it in ("enabled").
	NamespaceLabelCustody = "keyward.io/custody"
	// NamespaceLabelRedactCertificates on a Namespace overrides strict mode
	// ("true" or "false") for that namespace.
	NamespaceLabelRedactCertificates = "keyward.io/redact-certificates"
)

// Annotations lists every annotation Keyward sets on a placeholder; the
// custody audit removes them all when it releases a Secret whose record is
// gone. The result is a fresh slice.
func Annotations() []string {
	return []string{
		AnnotationPath, AnnotationVersion, AnnotationKeySHA256, AnnotationScrubbedAt,
		AnnotationScrubbedBy, AnnotationSerial, AnnotationNotBefore, AnnotationNotAfter,
	}
}

// Placeholder is what a placeholder Secret's custody markers say about the
// record that holds its key.
type Placeholder struct {
	// Path is AnnotationPath: the store's name for the record.
	Path string
	// Version is AnnotationVersion, at least 1.
	Version int
	// KeySHA256 is AnnotationKeySHA256, lower-cased.
	KeySHA256 string
	// Serial is AnnotationSerial (may be empty on placeholders written
	// before Keyward recorded it).
	Serial string
}

// ParsePlaceholder reports whether obj (a Secret, or only its metadata) is a
// placeholder and, if so, which custody record it names. It is THE rule:
// obj is a placeholder when it carries LabelCustody=LabelCustodyVault, a
// non-empty AnnotationPath, an AnnotationVersion that is an integer of at
// least 1 and a non-empty AnnotationKeySHA256. Anything less (a Secret the
// audit released, half-removed markers, a hand-written version) is not a
// placeholder; whether it still holds a key is a separate question.
func ParsePlaceholder(obj metav1.Object) (Placeholder, bool) {
	if obj == nil || obj.GetLabels()[LabelCustody] != LabelCustodyVault {
		return Placeholder{}, false
	}
	ann := obj.GetAnnotations()
	v, err := strconv.Atoi(ann[AnnotationVersion])
	p := Placeholder{
		Path:      ann[AnnotationPath],
		Version:   v,
		KeySHA256: strings.ToLower(ann[AnnotationKeySHA256]),
		Serial:    ann[AnnotationSerial],
	}
	if err != nil || v < 1 || p.Path == "" || p.KeySHA256 == "" {
		return Placeholder{}, false
	}
	return p, true
}
