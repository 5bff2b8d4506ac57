// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package adopt

import (
	"context"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/custody"
)

// placeholderFor is the placeholder Secret of rec as the scrubber writes it.
func placeholderFor(rec custody.Record, path string, version int) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: rec.Namespace, Name: rec.Name,
			Labels: map[string]string{custody.LabelCustody: custody.LabelCustodyVault},
			Annotations: map[string]string{
				custody.AnnotationPath: path, custody.AnnotationVersion: strconv.Itoa(version),
				custody.AnnotationKeySHA256: rec.Meta.KeySHA256, custody.AnnotationSerial: rec.Meta.Serial,
			},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{custody.DataKey: {}, custody.DataCertificate: rec.Certificate},
	}
}

func TestMigrationMovesWithoutRekeying(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	src := f.east.recs["shop/web-tls"]
	ph := placeholderFor(src, f.east.Path("shop", "web-tls"), src.Meta.Version)
	if err := f.kube.Create(context.Background(), ph); err != nil {
		t.Fatal(err)
	}
	m := Migration{From: f.east, To: f.west, Secrets: f.kube}

	dry := m
	dry.DryRun = true
	moved, err := dry.Migrate(context.Background(), []string{"shop"})
	if err != nil || len(moved) != 1 || moved[0].Skipped != "" || len(f.west.recs) != 0 {
		t.Fatalf("dry run: %+v, %v, %d records written; want one planned move, nothing written", moved, err, len(f.west.recs))
	}

	for run := 1; run <= 2; run++ { // a second run finds the placeholder moved
		moved, err = m.Migrate(context.Background(), []string{"shop"})
		if err != nil || len(moved) != 1 {
			t.Fatalf("run %d: %+v, %v", run, moved, err)
		}
	}
	if moved[0].Skipped != "already in the new store" {
		t.Errorf("second run: %+v, want it skipped as already moved", moved[0])
	}
	dst := f.west.recs["shop/web-tls"]
	if string(dst.Key) != string(src.Key) || dst.Meta.Serial != src.Meta.Serial || dst.Meta.Version != 1 {
		t.Fatalf("the new store's record differs from the old one (version %d)", dst.Meta.Version)
	}
	var got corev1.Secret
	if err := f.kube.Get(context.Background(), client.ObjectKeyFromObject(ph), &got); err != nil {
		t.Fatal(err)
	}
	p, ok := custody.ParsePlaceholder(&got)
	if !ok || p.Path != f.west.Path("shop", "web-tls") || p.Version != 1 || p.Serial != src.Meta.Serial {
		t.Errorf("placeholder after the move: %+v (ok %v)", p, ok)
	}
}

func TestMigrationSkipsWhatDoesNotMatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	src := f.east.recs["shop/web-tls"]
	// The placeholder names version 7; the old store's current one is 1.
	ph := placeholderFor(src, f.east.Path("shop", "web-tls"), 7)
	if err := f.kube.Create(context.Background(), ph); err != nil {
		t.Fatal(err)
	}
	m := Migration{From: f.east, To: f.west, Secrets: f.kube}
	moved, err := m.Migrate(context.Background(), []string{"shop"})
	if err != nil || len(moved) != 1 || !strings.Contains(moved[0].Skipped, "not the one the placeholder names") || len(f.west.recs) != 0 {
		t.Fatalf("Migrate = %+v, %v; want the placeholder skipped with the reason and nothing written", moved, err)
	}
}
