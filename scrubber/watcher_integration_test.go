// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/scrubber"
)

// writerStore returns a custody store authenticated with a token that
// carries only the keyward-custody-writer policy, as in production.
func writerStore(t *testing.T, v *framework.Vault, timeout time.Duration) (*vaultkv.Store, *vaultapi.Client) {
	t.Helper()
	s, c, err := v.CustodyStore(context.Background(), timeout, framework.PolicyCustodyWriter)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func isPlaceholder(s *corev1.Secret) bool {
	_, ok := custody.ParsePlaceholder(s)
	return ok
}

// TestWatcherIntegration runs the watcher against a real apiserver and Vault:
// a key-bearing Secret that existed before Keyward (no webhook) is scrubbed,
// its custody record holds the same key, and deleting the record releases
// the placeholder so cert-manager would re-issue.
func TestWatcherIntegration(t *testing.T) {
	env := framework.StartForTest(t, framework.Options{WithoutCertManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	store, _ := writerStore(t, env.Vault, 5*time.Second)
	root, err := env.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}

	if err := env.CreateNamespace(ctx, "team-a", map[string]string{custody.NamespaceLabelCustody: "enabled"}); err != nil {
		t.Fatal(err)
	}
	if err := env.CreateNamespace(ctx, "other", nil); err != nil {
		t.Fatal(err)
	}
	pre := scrubber.ScrubTestSecret(t)
	keyPEM := pre.Data["tls.key"]
	outside := pre.DeepCopy()
	outside.Namespace = "other"
	for _, s := range []*corev1.Secret{pre, outside} {
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	reg := prometheus.NewRegistry()
	metrics, err := scrubber.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	log, err := env.Logger("keyward-watcher", 2)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(env.RESTConfig, ctrl.Options{
		Logger:                 log,
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := scrubber.SetupWatcher(mgr, scrubber.WatcherOptions{Store: store, AuditPeriod: time.Second, Metrics: metrics}); err != nil {
		t.Fatal(err)
	}
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	key := client.ObjectKeyFromObject(pre)
	var got corev1.Secret
	poll(ctx, t, "secret scrubbed", func() bool {
		return env.Client.Get(ctx, key, &got) == nil && isPlaceholder(&got)
	})
	if scrubber.HoldsKeyMaterial(&got) || len(got.Data["tls.crt"]) == 0 {
		t.Fatalf("placeholder data keys wrong")
	}
	block, _ := pem.Decode(got.Data["tls.crt"])
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if fp := hex.EncodeToString(sum[:]); got.Annotations[custody.AnnotationKeySHA256] != fp {
		t.Errorf("key-sha256 annotation %q, want %q", got.Annotations[custody.AnnotationKeySHA256], fp)
	}
	md, err := store.Metadata(ctx, "team-a", "web-tls")
	if err != nil {
		t.Fatal(err)
	}
	if md.KeySHA256 != got.Annotations[custody.AnnotationKeySHA256] || md.Serial != got.Annotations[custody.AnnotationSerial] {
		t.Errorf("custody metadata %+v does not match the placeholder", md)
	}
	kv, err := root.KVv2("custody").Get(ctx, "tls/team-a/web-tls")
	if err != nil {
		t.Fatal(err)
	}
	if kv.Data["tls.key"] != string(keyPEM) {
		t.Errorf("custody record does not hold the Secret's key")
	}
	if n := testutil.CollectAndCount(metrics.KeyExposure); n != 1 {
		t.Errorf("exposure samples: %d series", n)
	}

	// The Secret outside custody namespaces keeps its key.
	var other corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(outside), &other); err != nil {
		t.Fatal(err)
	}
	if !scrubber.HoldsKeyMaterial(&other) || isPlaceholder(&other) {
		t.Errorf("secret outside custody namespaces was scrubbed")
	}

	// next-private-key Secrets: lifetime measured at deletion.
	next := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web-next", Labels: map[string]string{scrubber.LabelNextPrivateKey: "true"}},
		Data:       map[string][]byte{"tls.key": []byte("not a real key")},
	}
	if err := env.Client.Create(ctx, next); err != nil {
		t.Fatal(err)
	}
	// The watcher's cache must have seen it before it goes: it counts it.
	poll(ctx, t, "next-private-key Secret seen", func() bool {
		return testutil.ToFloat64(metrics.NextPrivateKeys) == 1
	})
	if err := env.Client.Delete(ctx, next); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "next-private-key lifetime observed", func() bool {
		var m = histogramCount(t, metrics.NextPrivateKeyLifetime)
		return m == 1 && testutil.ToFloat64(metrics.NextPrivateKeys) == 0
	})

	// Custody record deleted in Vault: the audit releases the placeholder.
	if err := store.Delete(ctx, "team-a", "web-tls"); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "placeholder released", func() bool {
		return env.Client.Get(ctx, key, &got) == nil && got.Labels[custody.LabelCustody] == "" &&
			got.Annotations[custody.AnnotationPath] == ""
	})
	if len(got.Data["tls.key"]) != 0 || got.Annotations[scrubber.AnnotationCertificateName] == "" {
		t.Errorf("release changed more than the custody markers")
	}
}

func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	h.Collect(ch)
	m := <-ch
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetHistogram().GetSampleCount()
}

func poll(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
