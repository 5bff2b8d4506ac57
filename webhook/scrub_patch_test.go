// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPlaceholderPatch applies placeholderPatch to the encoded original and
// expects exactly the placeholder back, for every shape of change a plan or
// the SDS marking makes, including keys that need JSON-pointer escaping and
// members the original did not have at all.
func TestPlaceholderPatch(t *testing.T) {
	secret := func(typ corev1.SecretType, data map[string][]byte, ann, labels map[string]string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "ns", Annotations: ann, Labels: labels, ResourceVersion: "7"},
			Type:       typ, Data: data,
		}
	}
	key := map[string][]byte{"tls.key": []byte("KEY"), "tls.crt": []byte("CRT")}
	emptied := map[string][]byte{"tls.key": {}, "tls.crt": []byte("CRT")}
	for name, tc := range map[string]struct{ orig, want *corev1.Secret }{
		"no annotations or labels before": {
			secret(corev1.SecretTypeTLS, key, nil, nil),
			secret(corev1.SecretTypeTLS, emptied, map[string]string{"keyward.io/custody-path": "custody/tls/ns/tls", "a~b/c": "x"}, map[string]string{"keyward.io/custody": "vault"}),
		},
		"changed, added and removed members": {
			secret(corev1.SecretTypeTLS, key, map[string]string{"keep": "1", "keyward.io/custody-version": "1", "keyward.io/not-after": "t"}, map[string]string{"app": "x"}),
			secret(corev1.SecretTypeTLS, emptied, map[string]string{"keep": "1", "keyward.io/custody-version": "2"}, map[string]string{"app": "x", "keyward.io/custody": "vault"}),
		},
		"SDS reference: type and new data keys": {
			secret(corev1.SecretTypeTLS, key, map[string]string{}, map[string]string{}),
			secret("keyward.io/sds", map[string][]byte{"tls.key": {}, "tls.crt": []byte("CRT"), "url": []byte("https://sds")}, map[string]string{"k": "v"}, map[string]string{"l": "v"}),
		},
		"no data before": {
			secret(corev1.SecretTypeOpaque, nil, map[string]string{"k": "v"}, nil),
			secret(corev1.SecretTypeOpaque, map[string][]byte{"tls.key": {}}, map[string]string{"k": "v"}, nil),
		},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(tc.orig)
			if err != nil {
				t.Fatal(err)
			}
			ops, err := json.Marshal(placeholderPatch(tc.orig, tc.want))
			if err != nil {
				t.Fatal(err)
			}
			p, err := jsonpatch.DecodePatch(ops)
			if err != nil {
				t.Fatalf("decoding %s: %v", ops, err)
			}
			out, err := p.Apply(raw)
			if err != nil {
				t.Fatalf("applying %s: %v", ops, err)
			}
			var got corev1.Secret
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(&got, tc.want) {
				t.Errorf("patch %s gave\n%s\nwant the placeholder", ops, out)
			}
		})
	}
	if ops := placeholderPatch(secret(corev1.SecretTypeTLS, key, nil, nil), secret(corev1.SecretTypeTLS, key, nil, nil)); len(ops) != 0 {
		t.Errorf("no change: %d operations, want none", len(ops))
	}
}
