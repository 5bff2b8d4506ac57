// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Command demo starts the embedded stack (kube-apiserver + etcd, Vault dev
// configured like production, cert-manager's controllers, Keyward), applies
// deploy/examples, and tells what happened. With -dev it keeps the stack
// running and writes bin/dev.env for kubectl/vault inspection.
package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"golang.org/x/sys/unix"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

func main() {
	dev := flag.Bool("dev", false, "keep the stack running until interrupted and write bin/dev.env")
	acme := flag.Bool("acme", false, "add the ACME chapter: a public-style certificate from pebble through DNS-01, into custody (about 2 more minutes)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dev, *acme); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func run(ctx context.Context, dev, acme bool) error {
	started := time.Now()
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	say("Keyward demo: starting the embedded stack (Vault, keyward kms, kube-apiserver + etcd encrypting Secrets, pebble + BIND, cert-manager, Keyward)...")
	dir := filepath.Join(root, "e2e", "_artifacts", "demo-"+started.Format("20060102-150405.000"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	restore, err := quietLibraries(filepath.Join(dir, "demo-libraries.log"))
	if err != nil {
		return err
	}
	defer restore()
	st, err := keyward.StartStack(ctx, keyward.StackOptions{Framework: framework.Options{Dir: dir, ACME: true}})
	if err != nil {
		return err
	}
	defer st.Stop()
	say("  kube-apiserver  %s   (etcd %s)", st.RESTConfig.Host, st.EtcdEndpoint)
	say("  vault           %s   (dev server: PKI root -> intermediate, KV v2 custody, Transit, audit log, Kubernetes auth)", st.Vault.Addr)
	say("  keyward kms     %s   (KMS v2 plugin: the apiserver encrypts Secrets at rest with Vault Transit)", st.KMS.Socket)
	say("  pebble          %s   (Let's Encrypt's test ACME CA; DNS-01 through BIND %s, zone %s)", st.ACME.Pebble.Directory, st.ACME.DNS.Addr, framework.ACMEZone)
	say("  cert-manager    %d controllers in-process", len(st.CertManagerControllers))
	say("  keyward         issuer + Secret scrub webhook + watcher + custody guard")
	say("  logs            %s (libraries' warnings, such as gRPC dial retries: demo-libraries.log)", st.Dir)
	say("  stack up in %s", time.Since(started).Round(time.Millisecond))

	c := st.Client
	if err := st.CreateNamespace(ctx, "demo", map[string]string{custody.NamespaceLabelCustody: "enabled"}); err != nil {
		return err
	}
	// The two examples a user applies to get a certificate into custody; the
	// other examples (delivery sidecars, CSI) need pods, which this stack has not.
	objs, err := loadExamples(filepath.Join(root, "deploy", "examples"), []string{"vaultclusterissuer.yaml", "certificate.yaml"}, st.Scheme)
	if err != nil {
		return err
	}
	var crt *cmapi.Certificate
	var issuerName string
	applied := time.Now()
	for _, o := range objs {
		switch obj := o.(type) {
		case *v1alpha1.VaultClusterIssuer:
			// The example names a placeholder server; point it at this stack's Vault.
			obj.Spec.Server = st.Vault.Addr
			issuerName = obj.Name
		case *cmapi.Certificate:
			crt = obj
		}
		if err := c.Create(ctx, o.(client.Object)); err != nil {
			return fmt.Errorf("applying example %T: %w", o, err)
		}
	}
	if crt == nil || issuerName == "" {
		return fmt.Errorf("deploy/examples must hold a VaultClusterIssuer and a Certificate")
	}
	say("\n1. Applied deploy/examples: VaultClusterIssuer %q (Kubernetes auth, role keyward-issuer) and Certificate %s/%s", issuerName, crt.Namespace, crt.Name)
	if err := poll(ctx, 60*time.Second, func(ctx context.Context) (bool, error) {
		iss := &v1alpha1.VaultClusterIssuer{}
		if err := c.Get(ctx, client.ObjectKey{Name: issuerName}, iss); err != nil {
			return false, err
		}
		for _, cond := range iss.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == "True" {
				say("   VaultClusterIssuer Ready: %s", cond.Message)
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return fmt.Errorf("VaultClusterIssuer %s not Ready: %w", issuerName, err)
	}
	issuerReady := time.Now()
	ready, err := waitReady(ctx, c, client.ObjectKeyFromObject(crt), 90*time.Second)
	if err != nil {
		return err
	}
	say("\n2. Certificate %s/%s Ready %s after it was applied (%s after its issuer became Ready; revision %d)", crt.Namespace, crt.Name,
		time.Since(applied).Round(time.Millisecond), time.Since(issuerReady).Round(time.Millisecond), *ready.Status.Revision)
	leaf, err := describeCustody(ctx, st, ready)
	if err != nil {
		return err
	}
	if err := etcdCheck(ctx, st, ready.Namespace, "5."); err != nil {
		return err
	}

	before := *ready.Status.Revision
	say("\n6. Forcing a renewal (Issuing=True, reason ManuallyTriggered, as `cmctl renew` does)...")
	if err := forceRenew(ctx, c, ready); err != nil {
		return err
	}
	if err := poll(ctx, 60*time.Second, func(ctx context.Context) (bool, error) {
		cur := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ready.Namespace, Name: ready.Spec.SecretName}, cur); err != nil {
			return false, err
		}
		return cur.Annotations[custody.AnnotationSerial] != "" && cur.Annotations[custody.AnnotationSerial] != leaf.SerialNumber.Text(16), nil
	}); err != nil {
		return fmt.Errorf("forced renewal did not complete: %w", err)
	}
	renewed, err := waitReady(ctx, c, client.ObjectKeyFromObject(crt), 60*time.Second)
	if err != nil {
		return err
	}
	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: renewed.Namespace, Name: renewed.Spec.SecretName}, sec); err != nil {
		return err
	}
	say("   renewed: new serial %s (was %s), custody version %s, tls.key still %d bytes",
		sec.Annotations[custody.AnnotationSerial], leaf.SerialNumber.Text(16), sec.Annotations[custody.AnnotationVersion], len(sec.Data["tls.key"]))
	say("   watching 10 s for a re-issue loop...")
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
	}
	cur := &cmapi.Certificate{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(crt), cur); err != nil {
		return err
	}
	if n := *cur.Status.Revision - before; n != 1 || !isReady(cur) {
		return fmt.Errorf("expected exactly 1 issuance for the forced renewal and Ready=True, got %d and Ready=%v", n, isReady(cur))
	}
	say("   exactly 1 issuance for the renewal (revision %d -> %d), none since; Certificate still Ready", before, *cur.Status.Revision)
	if err := etcdCheck(ctx, st, ready.Namespace, "7."); err != nil {
		return err
	}
	if acme {
		if err := acmeChapter(ctx, st, root); err != nil {
			return err
		}
	}
	say("\nDemo finished in %s.", time.Since(started).Round(time.Millisecond))

	if dev {
		return keepRunning(ctx, st, root)
	}
	return nil
}

// describeCustody prints the placeholder Secret and the custody record.
func describeCustody(ctx context.Context, st *keyward.Stack, crt *cmapi.Certificate) (*x509.Certificate, error) {
	sec := &corev1.Secret{}
	if err := st.Client.Get(ctx, client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, sec); err != nil {
		return nil, err
	}
	say("\n3. Secret %s/%s as stored: tls.key %d bytes, tls.crt %d bytes, ca.crt %d bytes",
		sec.Namespace, sec.Name, len(sec.Data["tls.key"]), len(sec.Data["tls.crt"]), len(sec.Data["ca.crt"]))
	for _, a := range []string{custody.AnnotationPath, custody.AnnotationVersion, custody.AnnotationKeySHA256, custody.AnnotationScrubbedAt, custody.AnnotationScrubbedBy} {
		say("   %s: %s", a, sec.Annotations[a])
	}
	if len(sec.Data["tls.key"]) != 0 {
		return nil, fmt.Errorf("secret %s/%s still holds a key", sec.Namespace, sec.Name)
	}
	vc, err := st.Vault.RootClient()
	if err != nil {
		return nil, err
	}
	rec, err := vc.KVv2(framework.VaultCustodyMount).Get(ctx, framework.VaultCustodyPrefix+"/"+sec.Namespace+"/"+sec.Name)
	if err != nil {
		return nil, fmt.Errorf("reading custody record: %w", err)
	}
	keyPEM, _ := rec.Data["tls.key"].(string)
	crtPEM, _ := rec.Data["tls.crt"].(string)
	leaf, chainOK, err := verify([]byte(crtPEM), st.Vault.RootCAPEM)
	if err != nil {
		return nil, err
	}
	say("\n4. Vault custody record %s version %d (read here with the dev root token; Keyward's own writer token cannot read it back)",
		sec.Annotations[custody.AnnotationPath], rec.VersionMetadata.Version)
	say("   private key: %d bytes of PEM, matches tls.crt: %v (SPKI sha256 %s)", len(keyPEM), keyMatches([]byte(keyPEM), leaf), custody.Fingerprint(leaf.RawSubjectPublicKeyInfo)[:16])
	say("   certificate: serial %s, CN/SANs %v, notAfter %s, chain verifies to the Vault root: %v",
		leaf.SerialNumber.Text(16), leaf.DNSNames, leaf.NotAfter.Format(time.RFC3339), chainOK)
	say("   status: notAfter %s, renewalTime %s", crt.Status.NotAfter.Format(time.RFC3339), crt.Status.RenewalTime.Format(time.RFC3339))
	say("   scrub latency (webhook, Vault write included): %s", histogramSummary(st, "keyward_scrub_duration_seconds"))
	return leaf, nil
}

// etcdCheck scans every retained revision of the namespace's Secrets in etcd.
func etcdCheck(ctx context.Context, st *keyward.Stack, ns, step string) error {
	revs, err := st.EtcdHistory(ctx, "/registry/secrets/"+ns+"/")
	if err != nil {
		return err
	}
	var leaked, temp, total int
	for _, r := range revs {
		if r.Deleted {
			continue
		}
		total++
		if framework.HoldsPEMPrivateKey(r.Value) {
			if bytes.Contains(r.Value, []byte("cert-manager.io/next-private-key")) {
				temp++
				continue
			}
			leaked++
		}
	}
	say("\n%s Scan of every retained etcd revision under /registry/secrets/%s/: %d revisions, %d private keys at rest in target Secrets", step, ns, total, leaked)
	if st.KMS != nil {
		raw, err := st.EtcdHistoryRaw(ctx, "/registry/secrets/"+ns+"/")
		if err != nil {
			return err
		}
		encrypted := 0
		for _, r := range raw {
			if !r.Deleted && bytes.HasPrefix(r.Value, []byte(framework.KMSPrefix)) {
				encrypted++
			}
		}
		say("   (each revision decrypted here with the apiserver's own KMS v2 transformer: etcd itself holds %d of the %d only as ciphertext of `keyward kms`, Vault Transit)", encrypted, total)
	}
	say("   (%d revisions belong to cert-manager's temporary next-private-key Secrets, which hold the key only while a request is signed and are then deleted)", temp)
	if leaked != 0 {
		return fmt.Errorf("%d target Secret revisions hold a private key", leaked)
	}
	return nil
}

func keepRunning(ctx context.Context, st *keyward.Stack, root string) error {
	if _, err := st.CreateACMEClusterIssuer(ctx, "acme", framework.ACMEProfileDefault); err != nil {
		return err
	}
	if err := poll(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		iss := &cmapi.ClusterIssuer{}
		if err := st.Client.Get(ctx, client.ObjectKey{Name: "acme"}, iss); err != nil {
			return false, err
		}
		return apiutil.IssuerHasCondition(iss, cmapi.IssuerCondition{Type: cmapi.IssuerConditionReady, Status: cmmeta.ConditionTrue}), nil
	}); err != nil {
		return fmt.Errorf("ClusterIssuer acme not Ready: %w", err)
	}
	user, err := st.AdminKubeconfig()
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(root, "bin", "dev.kubeconfig")
	if err := os.WriteFile(kubeconfig, user, 0o600); err != nil {
		return err
	}
	env := strings.Join([]string{
		"export KUBECONFIG=" + kubeconfig,
		"export VAULT_ADDR=" + st.Vault.Addr,
		"export VAULT_TOKEN=" + st.Vault.RootToken,
		"export ETCD_ENDPOINTS=" + st.EtcdEndpoint,
		"export ACME_DIRECTORY=" + st.ACME.Pebble.Directory,
		"export ACME_MANAGEMENT=" + st.ACME.Pebble.Management,
		"export ACME_CA_BUNDLE=" + filepath.Join(st.Dir, "pebble", "ca.crt"),
		"export ACME_DNS_SERVER=" + st.ACME.DNS.Addr,
		"export ACME_ZONE=" + framework.ACMEZone,
		"export PATH=" + filepath.Join(root, "bin") + ":$PATH",
	}, "\n") + "\n"
	envFile := filepath.Join(root, "bin", "dev.env")
	if err := os.WriteFile(envFile, []byte(env), 0o600); err != nil {
		return err
	}
	say("\nThe stack keeps running (namespace demo is custody-enabled, VaultClusterIssuer vault and ClusterIssuer acme are Ready;")
	say("ACME certificates: names under %s, DNS-01 through BIND at $ACME_DNS_SERVER, pebble's root at $ACME_MANAGEMENT/roots/0).", framework.ACMEZone)
	say("In another shell: source %s   (then bin/kubectl, built from the stack's Kubernetes release, and bin/vault work: kubectl get certificates -n demo)", envFile)
	fmt.Print(env)
	say("Ctrl-C stops everything.")
	<-ctx.Done()
	return nil
}

func loadExamples(dir string, names []string, scheme *runtime.Scheme) ([]runtime.Object, error) {
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	var out []runtime.Object
	for _, name := range names {
		f := filepath.Join(dir, name)
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		reader := utilyaml.NewYAMLReader(bufioReader(data))
		for {
			doc, err := reader.Read()
			if err != nil {
				break
			}
			if len(bytes.TrimSpace(doc)) == 0 || !bytes.Contains(doc, []byte("kind:")) {
				continue
			}
			obj, gvk, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				return nil, fmt.Errorf("decoding %s: %w", f, err)
			}
			switch obj.(type) {
			case *v1alpha1.VaultClusterIssuer, *cmapi.ClusterIssuer, *cmapi.Certificate:
				out = append(out, obj)
			default:
				say("   (skipping %s from %s: the demo creates it itself)", gvk.Kind, filepath.Base(f))
			}
		}
	}
	// Issuers first.
	for i := range out {
		if _, ok := out[i].(*v1alpha1.VaultClusterIssuer); ok && i > 0 {
			out[0], out[i] = out[i], out[0]
		}
	}
	return out, nil
}

func waitReady(ctx context.Context, c client.Client, key client.ObjectKey, limit time.Duration) (*cmapi.Certificate, error) {
	crt := &cmapi.Certificate{}
	err := poll(ctx, limit, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, crt); err != nil {
			return false, err
		}
		return isReady(crt), nil
	})
	if err != nil {
		return nil, fmt.Errorf("Certificate %s not Ready after %s: %w (conditions %+v)", key, limit, err, crt.Status.Conditions)
	}
	return crt, nil
}

func isReady(crt *cmapi.Certificate) bool {
	return apiutil.CertificateHasCondition(crt, cmapi.CertificateCondition{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue})
}

func forceRenew(ctx context.Context, c client.Client, crt *cmapi.Certificate) error {
	// cert-manager may be writing the status at the same time: retry on conflict.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &cmapi.Certificate{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(crt), cur); err != nil {
			return err
		}
		apiutil.SetCertificateCondition(cur, cur.Generation, cmapi.CertificateConditionIssuing, cmmeta.ConditionTrue,
			"ManuallyTriggered", "Certificate re-issuance manually triggered by the Keyward demo")
		return c.Status().Update(ctx, cur)
	})
}

func poll(ctx context.Context, limit time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			return false, nil
		}
		return ok, nil
	})
}

// quietLibraries sends what the libraries in this process write to stderr
// (gRPC's dial retries, net/http's TLS handshake EOFs, klog warnings) to the
// file path, so the console shows the demo's story only. It returns the
// function that gives stderr back.
func quietLibraries(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	saved, err := unix.Dup(2)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("keeping stderr: %w", err)
	}
	if err := unix.Dup2(int(f.Fd()), 2); err != nil {
		f.Close()
		_ = unix.Close(saved)
		return nil, fmt.Errorf("sending library output to %s: %w", path, err)
	}
	return func() {
		_ = unix.Dup2(saved, 2)
		_ = unix.Close(saved)
		_ = f.Close()
	}, nil
}
