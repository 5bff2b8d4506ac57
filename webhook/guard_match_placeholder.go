// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

// GuardMatchConditions is a temporary stand-in until webhook/guard_match.go
// lands; it matches every certificates/status update.
func GuardMatchConditions() []admissionregistrationv1.MatchCondition { return nil }
