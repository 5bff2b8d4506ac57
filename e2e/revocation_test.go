// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
	"github.com/keyward-io/keyward/revocation"
)

// revocationGrace is the test issuer's grace period: long enough to check,
// and restart Keyward, before it ends; short enough not to wait idly.
const revocationGrace = 15 * time.Second

// TestRevocation is the story of docs/revocation.md on the real stack: a
// VaultClusterIssuer with spec.revocation; a renewal puts the old serial in
// Vault's CRL after the grace period (not before, and across a Keyward
// restart), with the revoke request in Vault's audit log under the revoker's
// own policy; a revocation Vault refuses is retried, visible as a Warning
// event and a metric, and succeeds once the policy is back; deleting the
// Certificate revokes its last serial.
func TestRevocation(t *testing.T) {
	t.Parallel()
	st := keyward.StartStackForTest(t, keyward.StackOptions{})
	ctx := context.Background()
	root, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "revocation"
	custodyNamespace(t, st, ns, nil)
	iss := keywardClusterIssuer(st, "vault-revoking")
	iss.Spec.Revocation = &v1alpha1.Revocation{
		GracePeriod: &metav1.Duration{Duration: revocationGrace},
		Auth: v1alpha1.VaultAuth{Kubernetes: &v1alpha1.KubernetesAuth{
			Role: "keyward-revoker", MountPath: framework.VaultKubernetesMount,
			ServiceAccountRef: v1alpha1.ServiceAccountRef{Name: framework.KeywardServiceAccount, Audiences: []string{framework.VaultAudience}},
		}},
	}
	checkRevocationValidation(t, st, iss)
	checkRevokerCannotSign(t, st)
	if err := st.Client.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	waitKeywardIssuerReady(t, st.Client, iss)
	ref := cmmeta.IssuerReference{Name: iss.Name, Kind: v1alpha1.VaultClusterIssuerKind, Group: v1alpha1.GroupName}
	crt := newCertificate(ns, "web", ref, "web.example.com")
	if err := st.Client.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(crt), time.Minute)
	waitSettled(t, st, crt)
	first := currentPlaceholder(t, st, ns, crt.Spec.SecretName)

	// 1. Renewal: the old serial is pending for the grace period, survives
	// a restart of Keyward, then is revoked; the new one is not.
	second := renewAndWait(t, st, crt, first)
	due := pendingDue(t, st, iss.Name, first.serial)
	waitGauge(t, st, "keyward_revocations_pending", 1)
	if crlHas(t, root, first.serial) {
		t.Fatalf("serial %s is in the CRL before its grace period ended", first.serial)
	}
	if now := time.Now(); !now.Before(due) {
		t.Fatalf("the pre-deadline CRL check ran at %s, after the due time %s: it proves nothing", now, due)
	}
	if err := st.StopKeyward(); err != nil {
		t.Fatal(err)
	}
	if err := st.StartKeyward(ctx); err != nil {
		t.Fatal(err)
	}
	waitGauge(t, st, "keyward_revocations_pending", 1) // read back from the ConfigMap by the new instance
	revokedAt := waitRevoked(t, root, first.serial)
	if revokedAt.Before(due.Truncate(time.Second)) {
		t.Errorf("Vault revoked %s at %s, before the due time %s", first.serial, revokedAt, due)
	}
	if crlHas(t, root, second.serial) {
		t.Errorf("the current serial %s was revoked", second.serial)
	}
	checkRevokeAudit(t, st, root, first.serial)
	waitCounter(t, st, revocation.ResultRevoked, 1)

	// 2. A revocation Vault refuses (the revoker's policy no longer allows
	// it) is retried and visible; it succeeds once the policy is back.
	if err := root.Sys().PutPolicyWithContext(ctx, "keyward-revoker", `path "pki_int/revoke" { capabilities = ["deny"] }`); err != nil {
		t.Fatal(err)
	}
	third := renewAndWait(t, st, crt, second)
	ev := waitRevocationEvent(t, st, metav1.NamespaceDefault, v1alpha1.VaultClusterIssuerKind, iss.Name, revocation.EventFailed, second.serial)
	if !strings.Contains(ev.Note, "403") || ev.Type != corev1.EventTypeWarning {
		t.Errorf("failure event %s %q: want a Warning with Vault's 403", ev.Type, ev.Note)
	}
	waitRevocationEvent(t, st, ns, "Certificate", crt.Name, revocation.EventFailed, second.serial)
	waitCounter(t, st, revocation.ResultError, 1)
	if crlHas(t, root, second.serial) {
		t.Fatalf("serial %s revoked although the policy denies it", second.serial)
	}
	restoreRevokerPolicy(t, root)
	waitRevoked(t, root, second.serial)

	// 3. Deleting the Certificate revokes the serial its Secret holds.
	if err := st.Client.Delete(ctx, crt); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, root, third.serial)
	waitGauge(t, st, "keyward_revocations_pending", 0)
}

// pendingDue reads a serial's due time from the state ConfigMap: the entry
// is persisted, so a restart keeps it.
func pendingDue(t *testing.T, st *keyward.Stack, issuerName, serial string) time.Time {
	t.Helper()
	var due time.Time
	waitFor(t, 10*time.Second, "serial "+serial+" pending in the ConfigMap", func(ctx context.Context) (bool, error) {
		cm := &corev1.ConfigMap{}
		if err := st.Client.Get(ctx, client.ObjectKey{Namespace: framework.KeywardNamespace, Name: revocation.DefaultConfigMapName}, cm); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		entries, err := revocation.Decode(cm.Data[revocation.DataKey])
		if err != nil {
			return false, err
		}
		e := entries[v1alpha1.VaultClusterIssuerKind+"/"+issuerName+"#"+strings.ToLower(serial)]
		if e == nil {
			return false, nil
		}
		if e.Reason != revocation.ReasonSuperseded || e.Due.Sub(e.Detected) != revocationGrace {
			return false, fmt.Errorf("pending entry %+v: want reason %s and a %s grace period", e, revocation.ReasonSuperseded, revocationGrace)
		}
		due = e.Due
		return true, nil
	})
	return due
}

func waitGauge(t *testing.T, st *keyward.Stack, name string, want float64) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%s = %v", name, want), func(context.Context) (bool, error) {
		v, ok := gaugeValue(t, st, name, nil)
		return ok && v == want, nil
	})
}

func waitCounter(t *testing.T, st *keyward.Stack, result string, atLeast float64) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("keyward_revocations_total{result=%q} >= %v", result, atLeast), func(context.Context) (bool, error) {
		mfs, err := st.Registry.Gather()
		if err != nil {
			return false, err
		}
		for _, mf := range mfs {
			if mf.GetName() != "keyward_revocations_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if labelMap(m)["result"] == result && m.GetCounter().GetValue() >= atLeast {
					return true, nil
				}
			}
		}
		return false, nil
	})
}

// crlEntries reads pki_int's current CRL (PEM through cert/crl, as a
// relying party would fetch the DER from /v1/pki_int/crl).
func crlEntries(t *testing.T, root *vaultapi.Client) []x509.RevocationListEntry {
	t.Helper()
	sec, err := root.Logical().ReadWithContext(context.Background(), framework.VaultIntPKIMount+"/cert/crl")
	if err != nil || sec == nil {
		t.Fatalf("reading the CRL: %v", err)
	}
	p, _ := sec.Data["certificate"].(string)
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		t.Fatalf("the CRL is not PEM")
	}
	crl, err := x509.ParseRevocationList(b.Bytes)
	if err != nil {
		t.Fatalf("parsing the CRL: %v", err)
	}
	return crl.RevokedCertificateEntries
}

func crlEntry(t *testing.T, root *vaultapi.Client, serial string) (x509.RevocationListEntry, bool) {
	t.Helper()
	want, ok := new(big.Int).SetString(strings.ReplaceAll(serial, ":", ""), 16)
	if !ok {
		t.Fatalf("serial %q is not hex", serial)
	}
	for _, e := range crlEntries(t, root) {
		if e.SerialNumber.Cmp(want) == 0 {
			return e, true
		}
	}
	return x509.RevocationListEntry{}, false
}

func crlHas(t *testing.T, root *vaultapi.Client, serial string) bool {
	t.Helper()
	_, ok := crlEntry(t, root, serial)
	return ok
}

// waitRevoked waits for serial in the CRL and returns its revocation time.
func waitRevoked(t *testing.T, root *vaultapi.Client, serial string) time.Time {
	t.Helper()
	var at time.Time
	waitFor(t, 90*time.Second, "serial "+serial+" in Vault's CRL", func(context.Context) (bool, error) {
		e, ok := crlEntry(t, root, serial)
		at = e.RevocationTime
		return ok, nil
	})
	return at
}

// checkRevokeAudit: Vault's audit log holds the revoke request for serial,
// made with the revoker's policy and carrying nothing but the serial.
func checkRevokeAudit(t *testing.T, st *keyward.Stack, root *vaultapi.Client, serial string) {
	t.Helper()
	hashed := auditHash(context.Background(), t, root, revocation.ColonSerial(serial))
	found := false
	for _, e := range readAudit(t, st.Vault.AuditLogPath) {
		if e.Type != "request" || e.Request.Path != framework.VaultIntPKIMount+"/revoke" {
			continue
		}
		for k := range e.Request.Data {
			if k != "serial_number" {
				t.Errorf("revoke request carries %q; it must carry the serial only", k)
			}
		}
		if e.Request.Data["serial_number"] != hashed {
			continue
		}
		found = true
		if !strings.Contains(strings.Join(e.Auth.Policies, ","), "keyward-revoker") || strings.Contains(strings.Join(e.Auth.Policies, ","), framework.PolicyIssuer) {
			t.Errorf("revoke of %s made with policies %v; want keyward-revoker and not the signing policy", serial, e.Auth.Policies)
		}
	}
	if !found {
		t.Errorf("no revoke request for serial %s in Vault's audit log", serial)
	}
	raw, err := os.ReadFile(st.Vault.AuditLogPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "PRIVATE KEY") {
		t.Errorf("Vault's audit log holds private key PEM")
	}
}

// waitRevocationEvent waits for an event about an object whose note names
// serial (in Vault's colon form).
func waitRevocationEvent(t *testing.T, st *keyward.Stack, ns, kind, name, reason, serial string) eventsNote {
	t.Helper()
	var found eventsNote
	waitFor(t, 30*time.Second, fmt.Sprintf("event %s about %s %s naming %s", reason, kind, name, serial), func(ctx context.Context) (bool, error) {
		list, err := st.Kubernetes.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range list.Items {
			if ev.Regarding.Kind == kind && ev.Regarding.Name == name && ev.Reason == reason && strings.Contains(ev.Note, revocation.ColonSerial(serial)) {
				found = eventsNote{Type: ev.Type, Note: ev.Note}
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

type eventsNote struct{ Type, Note string }

func restoreRevokerPolicy(t *testing.T, root *vaultapi.Client) {
	t.Helper()
	dir, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(dir, "deploy", "vault", "keyward-revoker.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicyWithContext(context.Background(), "keyward-revoker", string(body)); err != nil {
		t.Fatal(err)
	}
}

// checkRevocationValidation: the apiserver refuses a grace period outside
// 1s..720h and a revocation block without its own login.
func checkRevocationValidation(t *testing.T, st *keyward.Stack, good *v1alpha1.VaultClusterIssuer) {
	t.Helper()
	for _, tc := range []struct {
		name string
		mod  func(*v1alpha1.Revocation)
		want string
	}{
		{"grace period 0s", func(r *v1alpha1.Revocation) { r.GracePeriod = &metav1.Duration{} }, "gracePeriod must be between 1s and 720h"},
		{"grace period 31 days", func(r *v1alpha1.Revocation) { r.GracePeriod = &metav1.Duration{Duration: 744 * time.Hour} }, "gracePeriod must be between 1s and 720h"},
		{"no revocation login", func(r *v1alpha1.Revocation) { r.Auth = v1alpha1.VaultAuth{} }, "exactly one of kubernetes, appRole or token must be set"},
	} {
		bad := good.DeepCopy()
		bad.Name = "invalid-revocation"
		tc.mod(bad.Spec.Revocation)
		err := st.Client.Create(context.Background(), bad)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: create error %v, want one saying %q", tc.name, err, tc.want)
			_ = st.Client.Delete(context.Background(), bad)
		}
	}
}

// checkRevokerCannotSign: the revocation role may not sign, and the signing
// role may not revoke.
func checkRevokerCannotSign(t *testing.T, st *keyward.Stack) {
	t.Helper()
	ctx := context.Background()
	c, _, err := vaultLogin(ctx, t, st.Env, framework.KeywardNamespace, framework.KeywardServiceAccount, framework.VaultAudience, "keyward-revoker")
	if err != nil {
		t.Fatalf("login to keyward-revoker: %v", err)
	}
	_, err = c.Logical().WriteWithContext(ctx, framework.VaultIntPKIMount+"/sign/"+framework.VaultKeywardRole, map[string]any{"csr": "x"})
	if got := vaultStatus(err); got != 403 {
		t.Errorf("keyward-revoker signing: status %d, want 403", got)
	}
	issuerClient, _, err := vaultLogin(ctx, t, st.Env, framework.KeywardNamespace, framework.KeywardServiceAccount, framework.VaultAudience, "keyward-issuer")
	if err != nil {
		t.Fatalf("login to keyward-issuer: %v", err)
	}
	_, err = issuerClient.Logical().WriteWithContext(ctx, framework.VaultIntPKIMount+"/revoke", map[string]any{"serial_number": "01:02"})
	if got := vaultStatus(err); got != 403 {
		t.Errorf("keyward-issuer revoking: status %d, want 403", got)
	}
}
