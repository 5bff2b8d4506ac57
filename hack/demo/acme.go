// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

// acmeChapter issues a public-style certificate from pebble (Let's
// Encrypt's test CA) through cert-manager's ACME issuer and DNS-01 in BIND,
// into custody, from the shipped examples pointed at the local stack.
func acmeChapter(ctx context.Context, st *keyward.Stack, root string) error {
	c := st.Client
	objs, err := loadExamples(filepath.Join(root, "deploy", "examples"), []string{"acme-clusterissuer.yaml", "acme-certificate.yaml"}, st.Scheme)
	if err != nil {
		return err
	}
	var iss *cmapi.ClusterIssuer
	var crt *cmapi.Certificate
	for _, o := range objs {
		switch obj := o.(type) {
		case *cmapi.ClusterIssuer:
			if obj.Name == "letsencrypt-staging" {
				iss = obj
			}
		case *cmapi.Certificate:
			crt = obj
		}
	}
	if iss == nil || crt == nil {
		return fmt.Errorf("deploy/examples must hold the letsencrypt-staging ClusterIssuer and an ACME Certificate")
	}
	// The staging example, pointed at this stack: pebble instead of Let's
	// Encrypt, the local BIND instead of your DNS server.
	acme := iss.Spec.ACME
	acme.Server, acme.CABundle = st.ACME.Pebble.Directory, st.ACME.Pebble.TLSCAPEM
	acme.Solvers[0].DNS01.RFC2136.Nameserver = st.ACME.DNS.Addr
	if err := c.Create(ctx, st.ACME.TSIGSecret(framework.CertManagerNamespace)); err != nil {
		return err
	}
	if err := c.Create(ctx, iss); err != nil {
		return err
	}
	if err := st.CreateNamespace(ctx, crt.Namespace, map[string]string{custody.NamespaceLabelCustody: "enabled"}); err != nil {
		return err
	}
	for i, name := range crt.Spec.DNSNames {
		crt.Spec.DNSNames[i] = strings.TrimSuffix(name, "example.com") + framework.ACMEZone
	}
	applied := time.Now()
	if err := c.Create(ctx, crt); err != nil {
		return err
	}
	say("\nA1. ACME: applied deploy/examples/acme-clusterissuer.yaml (ClusterIssuer %s, DNS-01 rfc2136 with a TSIG key) and acme-certificate.yaml,", iss.Name)
	say("    pointed at pebble %s (Let's Encrypt's test CA) and BIND %s (zone %s); Certificate %s/%s for %v",
		st.ACME.Pebble.Directory, st.ACME.DNS.Addr, framework.ACMEZone, crt.Namespace, crt.Name, crt.Spec.DNSNames)
	say("    cert-manager waits a fixed 60 s per DNS-01 name before asking the CA to validate: about two minutes for a wildcard and its apex...")
	ready, err := waitReady(ctx, c, client.ObjectKeyFromObject(crt), 4*time.Minute)
	if err != nil {
		return err
	}
	say("\nA2. Certificate %s/%s Ready %s after it was applied", crt.Namespace, crt.Name, time.Since(applied).Round(time.Second))
	if err := describeACMECustody(ctx, st, ready); err != nil {
		return err
	}
	if err := describeOrders(ctx, st, ready, acme.PrivateKey.Name); err != nil {
		return err
	}
	return etcdCheck(ctx, st, ready.Namespace, "A5.")
}

func describeACMECustody(ctx context.Context, st *keyward.Stack, crt *cmapi.Certificate) error {
	sec := &corev1.Secret{}
	if err := st.Client.Get(ctx, client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, sec); err != nil {
		return err
	}
	if len(sec.Data[corev1.TLSPrivateKeyKey]) != 0 {
		return fmt.Errorf("secret %s/%s still holds a key", sec.Namespace, sec.Name)
	}
	vc, err := st.Vault.RootClient()
	if err != nil {
		return err
	}
	rec, err := vc.KVv2(framework.VaultCustodyMount).Get(ctx, framework.VaultCustodyPrefix+"/"+sec.Namespace+"/"+sec.Name)
	if err != nil {
		return fmt.Errorf("reading custody record: %w", err)
	}
	keyPEM, _ := rec.Data[custody.DataKey].(string)
	crtPEM, _ := rec.Data[custody.DataCertificate].(string)
	rootPEM, err := st.ACME.Pebble.RootPEM(ctx)
	if err != nil {
		return err
	}
	leaf, chainOK, err := verify([]byte(crtPEM), rootPEM)
	if err != nil {
		return err
	}
	say("\nA3. Secret %s/%s: tls.key %d bytes; custody record %s version %d holds the key (%d bytes of PEM, matches tls.crt: %v)",
		sec.Namespace, sec.Name, len(sec.Data[corev1.TLSPrivateKeyKey]), sec.Annotations[custody.AnnotationPath], rec.VersionMetadata.Version,
		len(keyPEM), keyMatches([]byte(keyPEM), leaf))
	say("    certificate: %v, issued by %q, valid until %s, chain verifies to pebble's root: %v",
		leaf.DNSNames, leaf.Issuer.CommonName, leaf.NotAfter.Format(time.RFC3339), chainOK)
	return nil
}

// describeOrders counts orders at the ACME server (pebble's log) and as
// cert-manager Order objects: one issuance, one order.
func describeOrders(ctx context.Context, st *keyward.Stack, crt *cmapi.Certificate, accountSecret string) error {
	ledger, err := st.ACME.Pebble.Ledger()
	if err != nil {
		return err
	}
	var orders cmacme.OrderList
	if err := st.Client.List(ctx, &orders, client.InNamespace(crt.Namespace)); err != nil {
		return err
	}
	say("\nA4. Orders: %d at the ACME server (pebble's log), %d Order object(s) for %s, %d issuance(s) (status.revision); ACME accounts registered: %d",
		len(ledger.Orders), len(orders.Items), crt.Name, *crt.Status.Revision, ledger.Accounts)
	if len(ledger.Orders) != 1 || len(orders.Items) != 1 {
		return fmt.Errorf("want exactly one order for one issuance, got %d at the server and %d Order objects", len(ledger.Orders), len(orders.Items))
	}
	say("    the ACME account key stays in Secret %s/%s (not a Certificate's key: custody leaves it alone)",
		framework.CertManagerNamespace, accountSecret)
	return nil
}
