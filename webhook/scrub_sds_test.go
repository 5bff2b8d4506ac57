// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"errors"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/keyward-io/keyward/custody"
)

// fakeSDS answers URL with a fixed address (or error) and counts calls.
type fakeSDS struct {
	url   string
	err   error
	calls int
}

func (f *fakeSDS) URL(_ context.Context, namespace, name string) (string, error) {
	f.calls++
	return f.url, f.err
}

func TestSecretScrubberSDS(t *testing.T) {
	t.Parallel()
	pair := scrubTNewPair(t)
	const url = "unix:///var/run/keyward/sds.sock"
	cases := []struct {
		name      string
		op        admissionv1.Operation
		typ       corev1.SecretType
		sds       *fakeSDS
		wantType  corev1.SecretType
		wantCalls int
	}{
		{"create for a marked gateway becomes an SDS reference", admissionv1.Create, corev1.SecretTypeTLS, &fakeSDS{url: url}, custody.SecretTypeSDS, 1},
		{"create for no marked gateway stays TLS", admissionv1.Create, corev1.SecretTypeTLS, &fakeSDS{}, corev1.SecretTypeTLS, 1},
		{"lookup error: stays TLS (the checker reports it)", admissionv1.Create, corev1.SecretTypeTLS, &fakeSDS{err: errors.New("cache not synced")}, corev1.SecretTypeTLS, 1},
		{"update never changes the type (immutable)", admissionv1.Update, corev1.SecretTypeTLS, &fakeSDS{url: url}, corev1.SecretTypeTLS, 0},
		{"an SDS Secret's renewal is scrubbed and keeps its type", admissionv1.Update, custody.SecretTypeSDS, &fakeSDS{url: url}, custody.SecretTypeSDS, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := newScrubFakeStore()
			h, _ := newScrubHandler(t, store, false)
			h.WithSDS(tc.sds)
			sec := scrubTSecret(pair)
			sec.Type = tc.typ
			if tc.typ == custody.SecretTypeSDS {
				custody.MarkSDS(sec, url)
			}
			req := scrubTRequest(t, sec, tc.op, false)
			resp := h.Handle(context.Background(), req)
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			got := applyScrubPatch(t, req, resp)
			if got.Type != tc.wantType {
				t.Errorf("type = %q, want %q", got.Type, tc.wantType)
			}
			if tc.sds.calls != tc.wantCalls {
				t.Errorf("SDS lookups = %d, want %d", tc.sds.calls, tc.wantCalls)
			}
			if len(got.Data["tls.key"]) != 0 || store.puts != 1 {
				t.Errorf("key not moved to custody first: tls.key %d bytes, %d custody writes", len(got.Data["tls.key"]), store.puts)
			}
			if tc.wantType == custody.SecretTypeSDS {
				if u, n := string(got.Data[custody.SDSDataURL]), string(got.Data[custody.SDSDataSecretName]); u != url || n != "team-a/web-tls" {
					t.Errorf("SDS reference url=%q secretName=%q, want %q and team-a/web-tls", u, n, url)
				}
			} else if _, ok := got.Data[custody.SDSDataURL]; ok {
				t.Errorf("a kubernetes.io/tls Secret got an SDS url")
			}
		})
	}
}

// A Certificate's Secret pre-created as Opaque is refused when cert-manager
// writes the key into it, with a message that says what to do; nothing is
// written to custody.
func TestSecretScrubberRefusesOpaqueTarget(t *testing.T) {
	t.Parallel()
	pair := scrubTNewPair(t)
	store := newScrubFakeStore()
	h, _ := newScrubHandler(t, store, false)
	sec := scrubTSecret(pair)
	sec.Type = corev1.SecretTypeOpaque
	for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
		resp := h.Handle(context.Background(), scrubTRequest(t, sec, op, false))
		want := "keyward: secret team-a/web-tls not admitted: planning custody for secret team-a/web-tls: a Secret of type Opaque cannot be a custody placeholder: " +
			"delete it so that cert-manager creates it again as kubernetes.io/tls for Certificate web"
		if resp.Allowed || resp.Result == nil || resp.Result.Message != want {
			t.Errorf("%s: allowed=%v, result %+v; want denied with %q", op, resp.Allowed, resp.Result, want)
		}
	}
	if store.puts != 0 {
		t.Errorf("%d custody writes for a refused Secret", store.puts)
	}
	// Without the key (the Secret as the user pre-created it) it is admitted untouched.
	delete(sec.Data, "tls.key")
	if resp := h.Handle(context.Background(), scrubTRequest(t, sec, admissionv1.Create, false)); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("an empty Opaque Secret: allowed=%v, %d patches; want admitted untouched", resp.Allowed, len(resp.Patches))
	}
}
