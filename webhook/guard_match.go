// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"strings"

	"github.com/keyward-io/keyward/guard"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// Names of the guard's match conditions (qualified names, as the apiserver
// requires).
const (
	GuardMatchHasConditions = "certificate-has-conditions"
	GuardMatchTransition    = "redaction-sensitive-transition"
)

// GuardMatchConditions are the CEL conditions under which the apiserver calls
// the custody guard on a certificates/status update. They are the CEL twin
// of guard.Candidate: the new object must carry
//
//   - an Issuing condition with status True and a redaction-induced reason
//     or DoesNotExist (guard.IssuingReasons) while the old object had no
//     Issuing=True (DoesNotExist: cert-manager's cache may not hold a
//     placeholder that exists), or
//   - the end of an issuance (guard.CompletesIssuance): the old
//     object had Issuing=True, the new one has no Issuing condition and is
//     not Ready=True, or
//   - a Ready condition with status False and a redaction-induced reason,
//     whatever the old object said: besides True/absent to False, this covers
//     False/DoesNotExist to False/MissingData (a fresh issuance in custody)
//     and a Ready=False/MissingData left behind while custody could not be
//     verified, which cert-manager never re-sends by itself and which only
//     the next status write (of any controller) can put right.
//
// Everything else, including a manual renewal (Issuing=True with reason
// ManuallyTriggered) and every status update of a Certificate that is not
// Ready=False for such a reason, never reaches the guard: it cannot be slowed
// down or blocked by it, whatever the failure policy. Objects are untyped in webhook CEL, so
// every optional field is tested with has() first; a missing field would be
// an evaluation error, which the failure policy would turn into a rejection.
func GuardMatchConditions() []admissionregistrationv1.MatchCondition {
	list := func(rs []string) string {
		quoted := make([]string, 0, len(rs))
		for _, r := range rs {
			quoted = append(quoted, "'"+r+"'")
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	}
	redaction := list(guard.RedactionReasons())
	oldConditions := "oldObject != null && has(oldObject.status) && has(oldObject.status.conditions)"

	issuing := "(c.type == 'Issuing' && c.status == 'True' && c.reason in " + list(guard.IssuingReasons()) +
		" && !(" + oldConditions + " && oldObject.status.conditions.exists(o, has(o.type) && has(o.status) && o.type == 'Issuing' && o.status == 'True')))"
	ready := "(c.type == 'Ready' && c.status == 'False' && c.reason in " + redaction + ")"
	// The write that ends an issuance: Issuing=True in the old object, no
	// Issuing condition in the new one (a failed issuance sets it False),
	// and the new one not Ready=True.
	isTrue := func(obj, typ string) string {
		return obj + ".status.conditions.exists(x, has(x.type) && has(x.status) && x.type == '" + typ + "' && x.status == 'True')"
	}
	completion := "(" + oldConditions + " && " + isTrue("oldObject", "Issuing") +
		" && !object.status.conditions.exists(x, has(x.type) && x.type == 'Issuing') && !" + isTrue("object", "Ready") + ")"

	return []admissionregistrationv1.MatchCondition{
		{
			Name:       GuardMatchHasConditions,
			Expression: "has(object.status) && has(object.status.conditions)",
		},
		{
			Name: GuardMatchTransition,
			Expression: "object.status.conditions.exists(c, has(c.type) && has(c.status) && has(c.reason) && (" +
				issuing + " || " + ready + ")) || " + completion,
		},
	}
}
