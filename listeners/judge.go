// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package listeners

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/tlsref"
)

// AnnotationTLSServedBy on a Gateway, ListenerSet, Ingress or ApisixTls says
// that something other than its own controller serves the custody keys it
// references (a Keyward-fed terminator, `keyward agent` delivering straight
// to the gateway's Admin API), so the Checker does not report it. Its value
// says what, for the humans reading it (e.g. "keyward-agent").
const AnnotationTLSServedBy = "keyward.io/tls-served-by"

// States of a reference, the values of the state label.
const (
	StateServable     = "servable"
	StateUnservable   = "unservable"
	StateAcknowledged = "acknowledged"
)

// Reasons a reference is unservable.
const (
	ReasonClassNotMarked = "GatewayClassNotMarkedForSDS"
	ReasonCreatedAsTLS   = "SecretCreatedBeforeSDS"
	ReasonNotSDSReader   = "NoSDSSupport"
	ReasonEmptyKey       = "EmptyKeyInSecret"
)

// Verdict is what the Checker concludes about one reference to a custody
// placeholder.
type Verdict struct {
	State string
	// Reason and Message explain an unservable reference.
	Reason, Message string
}

// Judge decides whether ref's data plane can get the key of the custody
// placeholder s. sdsURL is the SDS address of the class of the Gateway that
// serves ref ("" for an unmarked class, and for Ingress and ApisixTls);
// acknowledged is whether the referencing object carries
// AnnotationTLSServedBy. It is pure.
//
// Only an Envoy Gateway listener whose class is marked for SDS and whose
// Secret is an SDS reference has a path to the key; every other consumer
// of a placeholder reads an empty tls.key.
func Judge(ref tlsref.Ref, s *corev1.Secret, sdsURL string, acknowledged bool) Verdict {
	if acknowledged {
		return Verdict{State: StateAcknowledged}
	}
	where := ref.Object()
	if ref.Listener != "" {
		where = fmt.Sprintf("listener %q of %s", ref.Listener, where)
	}
	secret := ref.Secret.String()
	switch ref.Kind {
	case tlsref.KindGateway, tlsref.KindListenerSet:
		switch {
		case s.Type == custody.SecretTypeSDS && sdsURL != "":
			return Verdict{State: StateServable}
		case sdsURL == "":
			return Verdict{State: StateUnservable, Reason: ReasonClassNotMarked, Message: fmt.Sprintf(
				"%s references Secret %s, whose private key is in custody: the data plane of Gateway %s reads an empty tls.key and drops the listener. "+
					"Mark its GatewayClass with %s (Envoy Gateway 1.9+ with keyward sds) and recreate the Secret, or use TLS passthrough to a Keyward-fed terminator",
				where, secret, ref.Gateway, custody.GatewayClassAnnotationSDSURL)}
		default:
			return Verdict{State: StateUnservable, Reason: ReasonCreatedAsTLS, Message: fmt.Sprintf(
				"%s references Secret %s, whose private key is in custody, but the Secret was created as %s before its Gateway's class was marked for SDS, and a Secret's type cannot change: "+
					"delete the Secret so that cert-manager creates it again as an SDS reference",
				where, secret, s.Type)}
		}
	default:
		if s.Type == custody.SecretTypeSDS {
			return Verdict{State: StateUnservable, Reason: ReasonNotSDSReader, Message: fmt.Sprintf(
				"%s references Secret %s, an Envoy Gateway SDS reference whose private key is in custody: only Envoy Gateway reads it",
				where, secret)}
		}
		return Verdict{State: StateUnservable, Reason: ReasonEmptyKey, Message: fmt.Sprintf(
			"%s references Secret %s, whose private key is in custody: its controller reads an empty tls.key and drops the certificate. "+
				"Serve it with keyward agent (files, APISIX or Kong Admin API) and annotate the %s with %s, or terminate TLS on a Keyward-fed terminator",
			where, secret, ref.Kind, AnnotationTLSServedBy)}
	}
}
