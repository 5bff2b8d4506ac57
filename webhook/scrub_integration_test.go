// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	vaultapi "github.com/hashicorp/vault/api"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/scrubber"
	"github.com/keyward-io/keyward/webhook"
)

// countingHandler counts the requests the apiserver sends, to prove the CEL
// match conditions filter in the real apiserver.
type countingHandler struct {
	next  admission.Handler
	calls atomic.Int64
}

func (c *countingHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	c.calls.Add(1)
	return c.next.Handle(ctx, req)
}

func integrationSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{scrubber.AnnotationCertificateName: name}},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
			"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		},
	}
}

// TestSecretScrubIntegration installs the generated webhook configuration in
// a real apiserver and serves the handler against a real Vault.
func TestSecretScrubIntegration(t *testing.T) {
	cfg := webhook.MutatingWebhookConfiguration(webhook.ConfigOptions{
		// envtest rewrites the service reference to its local serving address.
		Service: &admissionregistrationv1.ServiceReference{Namespace: "keyward-system", Name: "keyward-webhook"},
	})
	// Only the scrub webhook: the guard's handler is not served here.
	cfg.Webhooks = cfg.Webhooks[:1]
	env := framework.StartForTest(t, framework.Options{WithoutCertManager: true, MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{cfg}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	tok, err := env.Vault.TokenForPolicies(ctx, framework.PolicyCustodyWriter)
	if err != nil {
		t.Fatal(err)
	}
	vcfg := vaultapi.DefaultConfig()
	vcfg.Address = env.Vault.Addr
	vcfg.MaxRetries = 0
	vc, err := vaultapi.NewClient(vcfg)
	if err != nil {
		t.Fatal(err)
	}
	vc.SetToken(tok)
	store, err := vaultkv.New(vc, vaultkv.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	root, err := env.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}

	log, err := env.Logger("keyward-webhook", 2)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(env.RESTConfig, ctrl.Options{
		Logger:                 log,
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host: env.Webhook.LocalServingHost, Port: env.Webhook.LocalServingPort, CertDir: env.Webhook.LocalServingCertDir,
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := scrubber.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := scrubber.NewScrubber(store, clock.RealClock{}, metrics, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhook.NewSecretScrubber(s, scrubber.NamespaceStrictMode{Reader: mgr.GetClient()})
	if err != nil {
		t.Fatal(err)
	}
	counter := &countingHandler{next: h}
	mgr.GetWebhookServer().Register(webhook.SecretScrubPath, &ctrlwebhook.Admission{
		Handler:        counter,
		LogConstructor: func(logr.Logger, *admission.Request) logr.Logger { return log },
	})
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	if err := env.CreateNamespace(ctx, "team-a", map[string]string{custody.NamespaceLabelCustody: "enabled"}); err != nil {
		t.Fatal(err)
	}
	if err := env.CreateNamespace(ctx, "other", nil); err != nil {
		t.Fatal(err)
	}
	c := env.Client

	// The webhook server may need a moment: retry the first create until the
	// apiserver reaches it.
	sec := integrationSecret(t, "team-a", "web-tls")
	keyPEM := string(sec.Data["tls.key"])
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Create(ctx, sec.DeepCopy())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("creating secret: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	var got corev1.Secret
	if err := c.Get(ctx, client.ObjectKeyFromObject(sec), &got); err != nil {
		t.Fatal(err)
	}
	if !isPlaceholder(&got) || scrubber.HoldsKeyMaterial(&got) {
		t.Fatalf("stored secret is not a placeholder: annotations %v", got.Annotations)
	}
	if _, ok := got.Data["tls.key"]; !ok {
		t.Errorf("tls.key entry missing")
	}
	kv, err := root.KVv2("custody").Get(ctx, "tls/team-a/web-tls")
	if err != nil {
		t.Fatal(err)
	}
	if kv.Data["tls.key"] != keyPEM {
		t.Errorf("custody record does not hold the key")
	}

	t.Run("placeholder updates do not call the webhook", func(t *testing.T) {
		before := counter.calls.Load()
		got.Labels["touched"] = "yes"
		if err := c.Update(ctx, &got); err != nil {
			t.Fatal(err)
		}
		opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "opaque"}, Data: map[string][]byte{"tls.key": []byte("x")}}
		if err := c.Create(ctx, opaque); err != nil {
			t.Fatal(err)
		}
		if n := counter.calls.Load() - before; n != 0 {
			t.Errorf("webhook called %d times for objects the match conditions exclude", n)
		}
	})

	t.Run("server-side apply re-sync keeps the custody markers", func(t *testing.T) {
		// cert-manager writes Secrets with server-side apply. Whether fields a
		// webhook adds are owned by the applier decides whether its next apply
		// (which omits them) deletes them.
		applied := integrationSecret(t, "team-a", "ssa-tls")
		applied.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
		apply := func(s *corev1.Secret) error {
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
			if err != nil {
				return err
			}
			obj := &unstructured.Unstructured{Object: u}
			unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
			return c.Patch(ctx, obj, client.Apply, client.FieldOwner("cert-manager-certificates-issuing"), client.ForceOwnership)
		}
		if err := apply(applied.DeepCopy()); err != nil {
			t.Fatal(err)
		}
		var first corev1.Secret
		if err := c.Get(ctx, client.ObjectKeyFromObject(applied), &first); err != nil {
			t.Fatal(err)
		}
		if !isPlaceholder(&first) {
			t.Fatalf("applied secret not scrubbed")
		}
		// The re-sync: same apply configuration, with the (empty) key read back.
		resync := applied.DeepCopy()
		resync.Data["tls.key"] = []byte{}
		if err := apply(resync); err != nil {
			t.Fatal(err)
		}
		var second corev1.Secret
		if err := c.Get(ctx, client.ObjectKeyFromObject(applied), &second); err != nil {
			t.Fatal(err)
		}
		if !isPlaceholder(&second) {
			t.Errorf("custody markers dropped by the applier's re-sync: %v", second.Annotations)
		}
	})

	t.Run("outside custody namespaces", func(t *testing.T) {
		before := counter.calls.Load()
		out := integrationSecret(t, "other", "web-tls")
		if err := c.Create(ctx, out); err != nil {
			t.Fatal(err)
		}
		var stored corev1.Secret
		if err := c.Get(ctx, client.ObjectKeyFromObject(out), &stored); err != nil {
			t.Fatal(err)
		}
		if !scrubber.HoldsKeyMaterial(&stored) || counter.calls.Load() != before {
			t.Errorf("secret outside custody namespaces was sent to the webhook")
		}
	})

	t.Run("dry run writes nothing", func(t *testing.T) {
		dry := integrationSecret(t, "team-a", "dry-tls")
		if err := c.Create(ctx, dry, client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		if _, err := root.KVv2("custody").GetMetadata(ctx, "tls/team-a/dry-tls"); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("dry run left a custody record (err %v)", err)
		}
	})

	t.Run("vault down denies the write", func(t *testing.T) {
		if err := env.Vault.Pause(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := env.Vault.Resume(); err != nil {
				t.Fatal(err)
			}
		}()
		down := integrationSecret(t, "team-a", "down-tls")
		err := c.Create(ctx, down)
		if err == nil {
			t.Fatal("secret persisted while the custody store was down")
		}
		if !strings.Contains(err.Error(), "team-a/down-tls") || !strings.Contains(err.Error(), "fail closed") {
			t.Errorf("error does not explain the denial: %v", err)
		}
		var stored corev1.Secret
		if err := c.Get(ctx, client.ObjectKeyFromObject(down), &stored); !apierrors.IsNotFound(err) {
			t.Errorf("secret exists after denial: %v", errors.Join(err))
		}
	})
}

// isPlaceholder is custody.ParsePlaceholder's verdict alone.
func isPlaceholder(s *corev1.Secret) bool {
	_, ok := custody.ParsePlaceholder(s)
	return ok
}
