// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/cmd/keyward/status"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/guard"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// TestKeywardStatus: an operator runs `keyward status` with an admin
// kubeconfig and a Vault token that may read custody metadata only (the
// keyward-guard policy). A Certificate issued into custody shows its
// custody version, serial and key fingerprint, Vault's record agreeing, and
// the custody guard's decision; a Certificate in a namespace without
// custody shows its key in the API; a deleted custody record is flagged.
// The exit code says whether anything needs attention.
func TestKeywardStatus(t *testing.T) {
	t.Parallel()
	// No audit: a deleted record stays "missing" until this test looks.
	st := keyward.StartStackForTest(t, keyward.StackOptions{PlaintextEtcd: true,
		Options: func(o *app.Options) { o.CustodyAuditPeriod = 0 }})
	ctx := context.Background()
	iss := keywardClusterIssuer(st, "vault")
	if err := st.Client.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	waitKeywardIssuerReady(t, st.Client, iss)
	ref := cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: "VaultClusterIssuer", Name: iss.Name}
	const ns, plainNS = "status-apps", "status-plain"
	custodyNamespace(t, st, ns, nil)
	if err := st.CreateNamespace(ctx, plainNS, nil); err != nil {
		t.Fatal(err)
	}
	web := newCertificate(ns, "web", ref, "web.status.example.com")
	plain := newCertificate(plainNS, "plain", ref, "plain.status.example.com")
	mustCreate(t, st.Client, web, plain)
	waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(web), time.Minute)
	waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(plain), time.Minute)
	sec := getSecret(t, st.Client, client.ObjectKey{Namespace: ns, Name: web.Spec.SecretName})
	if !isPlaceholder(sec) {
		t.Fatalf("Secret %s/%s is not a placeholder", ns, sec.Name)
	}
	leaf := verifyChain(t, sec.Data[corev1.TLSCertKey], st.Vault.RootCAPEM, "web.status.example.com")

	o := statusOptions(t, st)
	o.Namespace, o.Output, o.Names = ns, status.OutputJSON, []string{web.Name}
	// The guard's event is recorded asynchronously: wait for it.
	var row status.Row
	waitFor(t, 20*time.Second, "keyward status shows the guard's decision", func(context.Context) (bool, error) {
		code, list, errOut := runStatus(t, o)
		if code != status.ExitOK || len(list.Items) != 1 {
			t.Fatalf("keyward status -n %s: exit %d, %d rows, stderr %q; want 0 and 1 row: %+v", ns, code, len(list.Items), errOut, list.Items)
		}
		row = list.Items[0]
		return row.Guard != nil, nil
	})
	t.Logf("web: custody v%d, store %q (v%d), guard %s/%s: %s", row.CustodyVersion, row.Store, row.StoreVersion, row.Guard.Event, row.Guard.Reason, row.Guard.Message)
	if row.Custody != status.CustodyInCustody || row.CustodyVersion < 1 || row.Store != status.StoreMatches || row.StoreVersion != row.CustodyVersion {
		t.Errorf("web row: custody %q v%d, store %q v%d; want in custody, v>=1, matches at the same version", row.Custody, row.CustodyVersion, row.Store, row.StoreVersion)
	}
	if row.Serial != custody.SerialHex(leaf) || row.KeySHA256 != sec.Annotations[custody.AnnotationKeySHA256] || row.KeySHA256 != custody.Fingerprint(leaf.RawSubjectPublicKeyInfo) {
		t.Errorf("web row: serial %s key %s; want the certificate's %s and %s", row.Serial, row.KeySHA256, custody.SerialHex(leaf), sec.Annotations[custody.AnnotationKeySHA256])
	}
	// The first issuance ends with the key in custody: the guard makes
	// the Certificate Ready in that write; any later look by cert-manager's
	// trigger is vetoed as redaction-only.
	if g := row.Guard; !(g.Event == guard.EventReasonReady && g.Reason == "Ready") && !(g.Event == guard.EventReasonKept && g.Reason == guard.DecisionRedactionOnly) {
		t.Errorf("guard decision %s/%s, want %s/Ready or %s/%s", g.Event, g.Reason, guard.EventReasonReady, guard.EventReasonKept, guard.DecisionRedactionOnly)
	}
	if row.NotAfter == nil || !row.NotAfter.Equal(leaf.NotAfter) || row.RenewalTime == nil || len(row.Problems) != 0 {
		t.Errorf("web row: notAfter %v (certificate %v), renewal %v, problems %q", row.NotAfter, leaf.NotAfter, row.RenewalTime, row.Problems)
	}

	// Outside custody, the key is in the API: a problem, exit 1.
	o.Namespace, o.Names = plainNS, nil
	code, list, _ := runStatus(t, o)
	if code != status.ExitProblems || len(list.Items) != 1 || list.Items[0].Custody != status.CustodyKeyInAPI || list.Problems != 1 {
		t.Errorf("keyward status -n %s: exit %d, rows %+v; want 1 and %q", plainNS, code, list.Items, status.CustodyKeyInAPI)
	}

	// The custody record is deleted behind Keyward's back.
	vc, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := vc.KVv2(framework.VaultCustodyMount).DeleteMetadata(ctx, framework.VaultCustodyPrefix+"/"+ns+"/"+web.Spec.SecretName); err != nil {
		t.Fatal(err)
	}
	o.Namespace, o.Output = "", status.OutputTable
	o.AllNamespaces = true
	var out, errOut bytes.Buffer
	code = status.Run(ctx, o, &out, &errOut)
	t.Logf("keyward status -A (exit %d):\n%s", code, out.String())
	if code != status.ExitProblems || errOut.Len() != 0 {
		t.Errorf("keyward status -A after the record was deleted: exit %d, stderr %q; want 1", code, errOut.String())
	}
	for _, want := range []string{"status-apps", "record missing", "status-plain", "key in the API", "PROBLEM  custody record custody/tls/status-apps/web-tls is missing"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("keyward status -A output lacks %q", want)
		}
	}
	if strings.Contains(out.String()+errOut.String(), o.VaultToken) {
		t.Error("keyward status printed the Vault token")
	}
}

// statusOptions are `keyward status`'s options for this stack: an admin
// kubeconfig and a Vault token with the guard's policy (metadata only).
func statusOptions(t *testing.T, st *keyward.Stack) *status.Options {
	t.Helper()
	kc, err := st.AdminKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := st.Vault.TokenForPolicies(context.Background(), framework.PolicyGuard)
	if err != nil {
		t.Fatal(err)
	}
	o := status.NewOptions()
	o.Kubeconfig, o.VaultAddr, o.VaultToken = path, st.Vault.Addr, tok
	o.CustodyMount, o.CustodyPrefix = framework.VaultCustodyMount, framework.VaultCustodyPrefix
	return o
}

// runStatus runs `keyward status -o json` in-process and parses its output.
func runStatus(t *testing.T, o *status.Options) (int, status.List, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := status.Run(context.Background(), o, &out, &errOut)
	var list status.List
	if code != status.ExitError {
		if err := json.Unmarshal(out.Bytes(), &list); err != nil {
			t.Fatalf("keyward status -o json output does not parse: %v\n%s", err, out.String())
		}
	}
	return code, list, errOut.String()
}
