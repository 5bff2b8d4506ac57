// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import "fmt"

// Reasons of the Normal events the custody guard records on a Certificate
// (webhook.WithGuardEvents), one per decision that matters to an operator.
// `keyward status` reads them back as the Certificate's last guard decision,
// so they are part of Keyward's public contract.
const (
	// EventReasonKept: the guard dropped cert-manager's redaction-induced
	// change (Issuing=True not set, Ready kept True): a Veto.
	EventReasonKept = "CustodyGuardKept"
	// EventReasonPassed: the guard let cert-manager's change through for a
	// genuine reason (renewal due, spec changed, expired, custody record
	// missing or for another certificate, ...): cert-manager re-issues.
	EventReasonPassed = "CustodyGuardPassed"
	// EventReasonReady: an issuance ended with the new key in custody and
	// the guard made the Certificate Ready=True in that same write.
	EventReasonReady = "CustodyGuardReady"
)

// EventReasons lists the guard's event reasons.
func EventReasons() []string {
	return []string{EventReasonKept, EventReasonPassed, EventReasonReady}
}

// EventFor says which event, if any, records d: its reason and its note,
// which starts with the decision's own reason ("<Reason>: <Message>") so
// that a reader can tell the two apart. A Pass with
// DecisionNotRedactionRelated records nothing: the guard took no side.
func EventFor(d Decision) (reason, note string, ok bool) {
	switch {
	case d.Outcome == Veto:
		reason = EventReasonKept
	case d.Outcome == PassRewritten && d.Reason == cmReasonReady:
		reason = EventReasonReady
	case d.Outcome == PassRewritten, d.Outcome == Pass && d.Reason != DecisionNotRedactionRelated && d.Reason != "":
		reason = EventReasonPassed
	default:
		return "", "", false
	}
	return reason, fmt.Sprintf("%s: %s", d.Reason, d.Message), true
}
