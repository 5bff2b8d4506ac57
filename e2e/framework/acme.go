// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package framework

import (
	"context"
	"fmt"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ACME is the stack's public-CA side: pebble as the ACME server and BIND as
// the DNS server DNS-01 challenges are published in (Options.ACME).
// cert-manager's ACME issuer runs in-process with the other controllers, its
// DNS-01 self-check asking only this BIND (recursive nameservers only, as
// --dns01-recursive-nameservers-only does), every second.
type ACME struct {
	DNS    *DNS
	Pebble *Pebble
}

// ACMETSIGSecret is the Secret holding BIND's TSIG key for the rfc2136
// solver: in CertManagerNamespace for ClusterIssuers, in the Issuer's
// namespace for an Issuer.
const ACMETSIGSecret = "acme-tsig"

// DNS01CheckRetryPeriod is how often cert-manager re-checks a DNS-01 record
// here (its default is 10 s).
const DNS01CheckRetryPeriod = time.Second

// StartACME starts BIND, then pebble resolving through it.
func StartACME(ctx context.Context, dir string, shortLived time.Duration) (*ACME, error) {
	d, err := StartDNS(ctx, dir)
	if err != nil {
		return nil, err
	}
	p, err := StartPebble(ctx, PebbleOptions{Dir: dir, DNS: d.Addr, ShortLived: shortLived})
	if err != nil {
		d.Stop()
		return nil, err
	}
	return &ACME{DNS: d, Pebble: p}, nil
}

// Stop stops pebble and BIND.
func (a *ACME) Stop() {
	if a == nil {
		return
	}
	a.Pebble.Stop()
	a.DNS.Stop()
}

// IssuerSpec is an ACME issuer against pebble with the DNS-01 rfc2136
// solver updating BIND under the TSIG key in Secret ACMETSIGSecret. The
// account key goes to accountSecret; profile picks pebble's certificate
// profile (ACMEProfileDefault or ACMEProfileShortLived).
func (a *ACME) IssuerSpec(accountSecret, profile string) cmapi.IssuerSpec {
	return cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{ACME: &cmacme.ACMEIssuer{
		Email:      "platform@" + ACMEZone,
		Server:     a.Pebble.Directory,
		CABundle:   a.Pebble.TLSCAPEM,
		Profile:    profile,
		PrivateKey: cmmeta.SecretKeySelector{LocalObjectReference: cmmeta.LocalObjectReference{Name: accountSecret}},
		Solvers: []cmacme.ACMEChallengeSolver{{DNS01: &cmacme.ACMEChallengeSolverDNS01{
			RFC2136: &cmacme.ACMEIssuerDNS01ProviderRFC2136{
				Nameserver:    a.DNS.Addr,
				TSIGKeyName:   TSIGKeyName,
				TSIGAlgorithm: TSIGAlgorithm,
				TSIGSecret: cmmeta.SecretKeySelector{
					LocalObjectReference: cmmeta.LocalObjectReference{Name: ACMETSIGSecret}, Key: "secret",
				},
			},
		}}},
	}}}
}

// TSIGSecret is the Secret the rfc2136 solver reads the TSIG key from.
func (a *ACME) TSIGSecret(namespace string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: ACMETSIGSecret, Namespace: namespace},
		StringData: map[string]string{"secret": a.DNS.TSIGSecret},
	}
}

// CreateACMEClusterIssuer creates the TSIG Secret (once) and a ClusterIssuer
// against pebble whose account key is kept in Secret <name>-account in
// CertManagerNamespace.
func (e *Env) CreateACMEClusterIssuer(ctx context.Context, name, profile string) (*cmapi.ClusterIssuer, error) {
	if e.ACME == nil {
		return nil, ErrNoACME
	}
	if err := e.Client.Create(ctx, e.ACME.TSIGSecret(CertManagerNamespace)); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating the TSIG Secret: %w", err)
	}
	iss := &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       e.ACME.IssuerSpec(name+"-account", profile),
	}
	if err := e.Client.Create(ctx, iss); err != nil {
		return nil, fmt.Errorf("creating ClusterIssuer %s: %w", name, err)
	}
	return iss, nil
}
