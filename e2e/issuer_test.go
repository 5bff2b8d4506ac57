// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/issuer"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// startIssuer runs Keyward's issuer in this process against env, as the
// keyward binary does, until the test ends.
func startIssuer(t *testing.T, env *framework.Env) {
	t.Helper()
	log, err := env.Logger("keyward-issuer", 2)
	if err != nil {
		t.Fatal(err)
	}
	// client-go's informers log through controller-runtime's global logger.
	ctrllog.SetLogger(log)
	mgr, err := ctrl.NewManager(env.RESTConfig, ctrl.Options{
		Scheme:                 env.Scheme,
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Several tests in this process each run a manager with the same controllers.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("creating manager: %v", err)
	}
	if err := issuer.Setup(mgr, issuer.Options{
		ClusterResourceNamespace: framework.KeywardNamespace,
		HealthCheckPeriod:        10 * time.Second,
		PendingRequeue:           2 * time.Second,
		RequestTimeout:           3 * time.Second,
		Registerer:               prometheus.NewRegistry(),
	}); err != nil {
		t.Fatalf("setting up issuer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("issuer manager: %v", err)
		}
	})
}

func keywardSpec(env *framework.Env, auth v1alpha1.VaultAuth) v1alpha1.VaultIssuerSpec {
	return v1alpha1.VaultIssuerSpec{
		Server: env.Vault.Addr,
		Path:   framework.VaultIntPKIMount + "/sign/" + framework.VaultKeywardRole,
		Auth:   auth,
	}
}

func kubernetesAuth() v1alpha1.VaultAuth {
	return v1alpha1.VaultAuth{Kubernetes: &v1alpha1.KubernetesAuth{
		Role:              "keyward-issuer",
		MountPath:         "/v1/auth/" + framework.VaultKubernetesMount,
		ServiceAccountRef: v1alpha1.ServiceAccountRef{Name: framework.KeywardServiceAccount, Audiences: []string{framework.VaultAudience}},
	}}
}

func waitKeywardIssuerReady(t *testing.T, c client.Client, iss v1alpha1.GenericIssuer) {
	t.Helper()
	waitFor(t, time.Minute, iss.IssuerKind()+" "+iss.GetName()+" Ready", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return false, err
		}
		cond := meta.FindStatusCondition(iss.IssuerStatus().Conditions, v1alpha1.ConditionReady)
		return cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == iss.GetGeneration(), nil
	})
}

func certificate(ns, name string, ref cmmeta.IssuerReference, dnsNames ...string) *cmapi.Certificate {
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cmapi.CertificateSpec{
			SecretName: name + "-tls",
			DNSNames:   dnsNames,
			Duration:   &metav1.Duration{Duration: 2 * time.Hour},
			IssuerRef:  ref,
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
		},
	}
}

func mustCreate(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func newCSR(t *testing.T, key crypto.Signer, dnsName string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// waitRequestFinished waits until a CertificateRequest is issued or failed
// (Ready reason Issued, Failed or Denied) and returns it.
func waitRequestFinished(t *testing.T, c client.Client, key client.ObjectKey) *cmapi.CertificateRequest {
	t.Helper()
	cr := &cmapi.CertificateRequest{}
	waitFor(t, time.Minute, "CertificateRequest "+key.String()+" to finish", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, cr); err != nil {
			return false, err
		}
		switch apiutil.CertificateRequestReadyReason(cr) {
		case cmapi.CertificateRequestReasonIssued, cmapi.CertificateRequestReasonFailed, cmapi.CertificateRequestReasonDenied:
			return true, nil
		}
		return false, nil
	})
	return cr
}

func readyCondition(cr *cmapi.CertificateRequest) cmapi.CertificateRequestCondition {
	for _, c := range cr.Status.Conditions {
		if c.Type == cmapi.CertificateRequestConditionReady {
			return c
		}
	}
	return cmapi.CertificateRequestCondition{}
}

// TestKeywardIssuer is the issuer's user story on the real stack: a platform
// team creates Vault issuers, application teams write ordinary cert-manager
// Certificates that name them, and keys never leave the cluster's Secrets
// while Vault signs.
func TestKeywardIssuer(t *testing.T) {
	env := framework.StartForTest(t, framework.Options{
		AddToScheme: []func(*runtime.Scheme) error{v1alpha1.AddToScheme},
	})
	startIssuer(t, env)
	ctx := context.Background()
	c := env.Client
	for _, ns := range []string{"app", "team"} {
		if err := env.CreateNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
	}

	cluster := &v1alpha1.VaultClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "vault"},
		Spec:       keywardSpec(env, kubernetesAuth()),
	}
	mustCreate(t, c, cluster)
	waitKeywardIssuerReady(t, c, cluster)
	clusterRef := cmmeta.IssuerReference{Group: v1alpha1.GroupName, Kind: v1alpha1.VaultClusterIssuerKind, Name: "vault"}

	t.Run("the API rejects issuers it cannot use", func(t *testing.T) {
		both := kubernetesAuth()
		both.Token = &v1alpha1.TokenAuth{SecretRef: v1alpha1.SecretKeySelector{Name: "t", Key: "token"}}
		badPath := keywardSpec(env, kubernetesAuth())
		badPath.Path = "pki_int/issue/keyward"
		for _, tc := range []struct {
			name string
			spec v1alpha1.VaultIssuerSpec
			want string
		}{
			{"two-auth-methods", keywardSpec(env, both), "exactly one of kubernetes, appRole or token"},
			{"no-auth-method", keywardSpec(env, v1alpha1.VaultAuth{}), "exactly one of kubernetes, appRole or token"},
			{"issue-path", badPath, "spec.path"},
		} {
			err := c.Create(ctx, &v1alpha1.VaultClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: tc.name}, Spec: tc.spec})
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: create error = %v, want Invalid mentioning %q", tc.name, err, tc.want)
			}
		}
	})

	t.Run("Certificate against a VaultClusterIssuer with Kubernetes auth becomes Ready", func(t *testing.T) {
		crt := certificate("app", "web", clusterRef, "web.example.com", "api.example.com")
		mustCreate(t, c, crt)
		waitCertificateReady(t, c, client.ObjectKeyFromObject(crt), 2*time.Minute)
		sec := getSecret(t, c, client.ObjectKey{Namespace: "app", Name: "web-tls"})
		leaf := verifyChain(t, sec.Data[corev1.TLSCertKey], env.Vault.RootCAPEM, "api.example.com")
		if got := slices.Sorted(slices.Values(leaf.DNSNames)); !slices.Equal(got, []string{"api.example.com", "web.example.com"}) {
			t.Errorf("leaf DNS names = %v, want the Certificate's", got)
		}
		// Vault back-dates notBefore by 30s; allow for it and clock skew.
		if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 2*time.Hour || life > 2*time.Hour+2*time.Minute {
			t.Errorf("leaf lifetime = %s, want the Certificate's 2h", life)
		}
		if strings.TrimSpace(string(sec.Data["ca.crt"])) != strings.TrimSpace(string(env.Vault.RootCAPEM)) {
			t.Errorf("ca.crt is not Vault's root CA")
		}
	})

	t.Run("VaultIssuer with AppRole auth issues in its namespace", func(t *testing.T) {
		roleID, secretID, err := env.Vault.AppRoleCredentials(ctx, "keyward-issuer")
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, c,
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "vault-approle"}, Data: map[string][]byte{"secretId": []byte(secretID)}},
		)
		iss := &v1alpha1.VaultIssuer{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "vault"},
			Spec: keywardSpec(env, v1alpha1.VaultAuth{AppRole: &v1alpha1.AppRoleAuth{
				Path: framework.VaultAppRoleMount, RoleID: roleID,
				SecretRef: v1alpha1.SecretKeySelector{Name: "vault-approle", Key: "secretId"},
			}}),
		}
		mustCreate(t, c, iss)
		waitKeywardIssuerReady(t, c, iss)
		crt := certificate("team", "svc", cmmeta.IssuerReference{Group: v1alpha1.GroupName, Kind: v1alpha1.VaultIssuerKind, Name: "vault"}, "svc.team.example.com")
		mustCreate(t, c, crt)
		waitCertificateReady(t, c, client.ObjectKeyFromObject(crt), 2*time.Minute)
		sec := getSecret(t, c, client.ObjectKey{Namespace: "team", Name: "svc-tls"})
		verifyChain(t, sec.Data[corev1.TLSCertKey], env.Vault.RootCAPEM, "svc.team.example.com")
	})

	t.Run("a name the Vault role forbids fails the request and the Certificate says why", func(t *testing.T) {
		crt := certificate("app", "evil", clusterRef, "evil.org")
		mustCreate(t, c, crt)
		var cr *cmapi.CertificateRequest
		waitFor(t, time.Minute, "the Certificate's request to fail", func(ctx context.Context) (bool, error) {
			var list cmapi.CertificateRequestList
			if err := c.List(ctx, &list, client.InNamespace("app")); err != nil {
				return false, err
			}
			for i := range list.Items {
				if metav1.IsControlledBy(&list.Items[i], crt) || strings.HasPrefix(list.Items[i].Name, "evil-") {
					cr = &list.Items[i]
					return apiutil.CertificateRequestReadyReason(cr) == cmapi.CertificateRequestReasonFailed, nil
				}
			}
			return false, nil
		})
		ready := readyCondition(cr)
		if !strings.Contains(ready.Message, "evil.org") || cr.Status.FailureTime == nil || len(cr.Status.Certificate) > 0 {
			t.Errorf("request Ready = %+v, failureTime %v: want Failed with Vault's reason and a failure time, no certificate", ready, cr.Status.FailureTime)
		}
		waitFor(t, time.Minute, "the Certificate to report the failure", func(ctx context.Context) (bool, error) {
			if err := c.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
				return false, err
			}
			cond := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionIssuing)
			return cond != nil && cond.Status == cmmeta.ConditionFalse && strings.Contains(cond.Message, "evil.org"), nil
		})
		if crt.Status.LastFailureTime == nil {
			t.Errorf("Certificate has no lastFailureTime")
		}
	})

	t.Run("weak keys are rejected with the rule they break", func(t *testing.T) {
		rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			key  crypto.Signer
			rule string
		}{
			{"weak-rsa", rsa1024, `policy rule "rsa-min-bits": RSA key is 1024 bits, minimum 2048`},
			{"weak-p521", p521, `policy rule "ecdsa-curve"`},
		} {
			cr := &cmapi.CertificateRequest{
				ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: tc.name},
				Spec:       cmapi.CertificateRequestSpec{Request: newCSR(t, tc.key, tc.name+".example.com"), IssuerRef: clusterRef, Duration: &metav1.Duration{Duration: time.Hour}},
			}
			mustCreate(t, c, cr)
			cr = waitRequestFinished(t, c, client.ObjectKeyFromObject(cr))
			ready := readyCondition(cr)
			if ready.Reason != cmapi.CertificateRequestReasonFailed || !strings.Contains(ready.Message, tc.rule) || len(cr.Status.Certificate) > 0 {
				t.Errorf("%s: Ready = %s/%q, want Failed naming %s", tc.name, ready.Reason, ready.Message, tc.rule)
			}
		}
	})

	t.Run("renewal issues new certificates with new serials", func(t *testing.T) {
		crt := certificate("app", "renew", clusterRef, "renew.example.com")
		crt.Spec.Duration = &metav1.Duration{Duration: time.Hour}
		crt.Spec.RenewBefore = &metav1.Duration{Duration: 59*time.Minute + 50*time.Second}
		mustCreate(t, c, crt)
		serials := map[string]bool{}
		waitFor(t, 3*time.Minute, "two renewals", func(ctx context.Context) (bool, error) {
			var sec corev1.Secret
			if err := c.Get(ctx, client.ObjectKey{Namespace: "app", Name: "renew-tls"}, &sec); err != nil {
				if apierrors.IsNotFound(err) {
					return false, nil
				}
				return false, err
			}
			block, _ := pem.Decode(sec.Data[corev1.TLSCertKey])
			if block == nil {
				return false, nil
			}
			leaf, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return false, err
			}
			serials[leaf.SerialNumber.String()] = true
			return len(serials) >= 3, nil // the first issuance and two renewals
		})
		sec := getSecret(t, c, client.ObjectKey{Namespace: "app", Name: "renew-tls"})
		verifyChain(t, sec.Data[corev1.TLSCertKey], env.Vault.RootCAPEM, "renew.example.com")
	})

	// Last: it takes Vault away from every other scenario.
	t.Run("a Vault outage makes the issuer not Ready, and requests made during it are signed after", func(t *testing.T) {
		if err := env.Vault.Pause(); err != nil {
			t.Fatal(err)
		}
		resumed := false
		t.Cleanup(func() {
			if !resumed {
				_ = env.Vault.Resume()
			}
		})
		waitFor(t, time.Minute, "the VaultClusterIssuer to report Vault unreachable", func(ctx context.Context) (bool, error) {
			if err := c.Get(ctx, client.ObjectKeyFromObject(cluster), cluster); err != nil {
				return false, err
			}
			cond := meta.FindStatusCondition(cluster.Status.Conditions, v1alpha1.ConditionReady)
			return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == issuer.ReasonVaultUnreachable, nil
		})
		crt := certificate("app", "outage", clusterRef, "outage.example.com")
		mustCreate(t, c, crt)
		waitFor(t, time.Minute, "the request made during the outage to wait", func(ctx context.Context) (bool, error) {
			var list cmapi.CertificateRequestList
			if err := c.List(ctx, &list, client.InNamespace("app")); err != nil {
				return false, err
			}
			for i := range list.Items {
				if metav1.IsControlledBy(&list.Items[i], crt) {
					return apiutil.CertificateRequestReadyReason(&list.Items[i]) == cmapi.CertificateRequestReasonPending, nil
				}
			}
			return false, nil
		})
		if err := env.Vault.Resume(); err != nil {
			t.Fatal(err)
		}
		resumed = true
		waitKeywardIssuerReady(t, c, cluster)
		waitCertificateReady(t, c, client.ObjectKeyFromObject(crt), time.Minute)
		sec := getSecret(t, c, client.ObjectKey{Namespace: "app", Name: "outage-tls"})
		verifyChain(t, sec.Data[corev1.TLSCertKey], env.Vault.RootCAPEM, "outage.example.com")
	})

	if errs := env.CertManagerErrors(); len(errs) > 0 {
		t.Errorf("cert-manager controllers failed: %v", errors.Join(errs...))
	}
}

// TestKeywardIssuerApproval runs without cert-manager's approver, so the test
// is the approval policy: the issuer must wait for approval, sign once
// approved, and never sign a denied request.
func TestKeywardIssuerApproval(t *testing.T) {
	env := framework.StartForTest(t, framework.Options{
		AddToScheme:                    []func(*runtime.Scheme) error{v1alpha1.AddToScheme},
		DisabledCertManagerControllers: []string{"certificaterequests-approver"},
	})
	startIssuer(t, env)
	ctx := context.Background()
	c := env.Client
	if err := env.CreateNamespace(ctx, "app", nil); err != nil {
		t.Fatal(err)
	}
	cluster := &v1alpha1.VaultClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "vault"}, Spec: keywardSpec(env, kubernetesAuth())}
	mustCreate(t, c, cluster)
	waitKeywardIssuerReady(t, c, cluster)
	ref := cmmeta.IssuerReference{Group: v1alpha1.GroupName, Kind: v1alpha1.VaultClusterIssuerKind, Name: "vault"}
	request := func(name string) *cmapi.CertificateRequest {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cr := &cmapi.CertificateRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name},
			Spec:       cmapi.CertificateRequestSpec{Request: newCSR(t, key, name+".example.com"), IssuerRef: ref, Duration: &metav1.Duration{Duration: time.Hour}},
		}
		mustCreate(t, c, cr)
		return cr
	}
	setCondition := func(cr *cmapi.CertificateRequest, typ cmapi.CertificateRequestConditionType, reason string) {
		t.Helper()
		waitFor(t, 30*time.Second, "setting "+string(typ)+" on "+cr.Name, func(ctx context.Context) (bool, error) {
			if err := c.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
				return false, err
			}
			apiutil.SetCertificateRequestCondition(cr, typ, cmmeta.ConditionTrue, reason, "set by the e2e test")
			return true, c.Status().Update(ctx, cr) // a conflict is retried
		})
	}

	t.Run("an unapproved request waits and is signed once approved", func(t *testing.T) {
		before := reconcileCount(t, "vault-certificaterequest")
		cr := request("waiting")
		// Like cert-manager's own issuers, Keyward writes nothing while a
		// request waits for approval (no Pending condition: that would be
		// one more write and watch event per issuance). The check below is
		// meaningful once the issuer has looked at the request: its
		// reconciler's counter moved.
		waitFor(t, 30*time.Second, "the issuer reconciling the unapproved request", func(context.Context) (bool, error) {
			return reconcileCount(t, "vault-certificaterequest") > before, nil
		})
		if err := c.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
			t.Fatal(err)
		}
		if len(cr.Status.Certificate) > 0 || apiutil.CertificateRequestIsApproved(cr) {
			t.Fatalf("an unapproved request was signed or approved by the issuer")
		}
		if ready := readyCondition(cr); ready.Type != "" {
			t.Fatalf("an unapproved request got a Ready condition %+v, want none until approval", ready)
		}
		setCondition(cr, cmapi.CertificateRequestConditionApproved, "KeywardE2E")
		cr = waitRequestFinished(t, c, client.ObjectKeyFromObject(cr))
		if apiutil.CertificateRequestReadyReason(cr) != cmapi.CertificateRequestReasonIssued {
			t.Fatalf("approved request: Ready = %+v, want Issued", readyCondition(cr))
		}
		verifyChain(t, cr.Status.Certificate, env.Vault.RootCAPEM, "waiting.example.com")
	})

	t.Run("a denied request is never signed", func(t *testing.T) {
		cr := request("denied")
		setCondition(cr, cmapi.CertificateRequestConditionDenied, "KeywardE2E")
		cr = waitRequestFinished(t, c, client.ObjectKeyFromObject(cr))
		time.Sleep(2 * time.Second) // and nothing changes afterwards
		if err := c.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
			t.Fatal(err)
		}
		ready := readyCondition(cr)
		if ready.Reason != cmapi.CertificateRequestReasonDenied || cr.Status.FailureTime == nil {
			t.Errorf("Ready = %+v, failureTime %v: want Denied with a failure time", ready, cr.Status.FailureTime)
		}
		if len(cr.Status.Certificate) > 0 || apiutil.CertificateRequestIsApproved(cr) {
			t.Errorf("denied request was signed or approved")
		}
	})
}

// reconcileCount is controller-runtime's reconcile counter of the named
// controller (every result), from its process-wide registry.
func reconcileCount(t *testing.T, controller string) float64 {
	t.Helper()
	mfs, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelMap(m)["controller"] == controller {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
