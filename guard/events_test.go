// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package guard

import "testing"

func TestEventFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		d          Decision
		wantReason string
		wantNote   string
	}{
		{"veto", Decision{Outcome: Veto, Reason: DecisionRedactionOnly, Message: "dropped"}, EventReasonKept, "RedactionOnly: dropped"},
		{"genuine reason", Decision{Outcome: PassRewritten, Reason: cmReasonRenewing, Message: "genuine reason passed: Issuing=Renewing"}, EventReasonPassed, "Renewing: genuine reason passed: Issuing=Renewing"},
		{"issuance completed", Decision{Outcome: PassRewritten, Reason: cmReasonReady, Message: "issuance completed"}, EventReasonReady, "Ready: issuance completed"},
		{"record missing", Decision{Outcome: Pass, Reason: DecisionCustodyRecordNotFound, Message: "no record"}, EventReasonPassed, "CustodyRecordNotFound: no record"},
		{"not related", Decision{Outcome: Pass, Reason: DecisionNotRedactionRelated, Message: "x"}, "", ""},
		{"no reason", Decision{Outcome: Pass}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reason, note, ok := EventFor(tc.d)
			if ok != (tc.wantReason != "") || reason != tc.wantReason || note != tc.wantNote {
				t.Errorf("EventFor(%+v) = %q, %q, %v; want %q, %q", tc.d, reason, note, ok, tc.wantReason, tc.wantNote)
			}
		})
	}
}
