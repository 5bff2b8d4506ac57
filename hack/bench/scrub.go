// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/vaultkv"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/scrubber"
	"github.com/keyward-io/keyward/webhook"
)

// keyPair is a PEM ECDSA P-256 key and a self-signed certificate for it:
// the payload of one cert-manager TLS Secret.
type keyPair struct{ Key, Cert []byte }

func newKeyPair(name string) (keyPair, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return keyPair{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name + ".example.com"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return keyPair{}, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// tlsSecret is what cert-manager writes for a Certificate: the scrub
// webhook's match conditions select exactly this shape.
func tlsSecret(ns, name string, kp keyPair) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Annotations: map[string]string{
				scrubber.AnnotationCertificateName: name,
				"cert-manager.io/issuer-name":      "bench",
				"cert-manager.io/issuer-kind":      "ClusterIssuer",
				"cert-manager.io/issuer-group":     "cert-manager.io",
			},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.key": kp.Key, "tls.crt": kp.Cert, "ca.crt": kp.Cert},
	}
}

// scrubResult compares a Secret Create with and without the scrub webhook to
// the custody write alone.
type scrubResult struct {
	M int
	// Plain: Create in a namespace without custody (no webhook call).
	// Custody: Create in a custody namespace (webhook writes to Vault, patches).
	Plain, Custody sample
	// FloorKV: one KV v2 data write of the same payload (writer-policy token).
	// FloorAdapter: vaultkv.Store.Put, the custody adapter the webhook uses
	// (one data write with check-and-set, the version's description inside).
	FloorKV, FloorAdapter sample
	// Webhook is keyward_scrub_duration_seconds{path="webhook"} over the phase.
	Webhook histogram
	// Where the added time goes, each a histogram delta over the phase
	// (their means are exact; the apiserver's buckets are too coarse for
	// quantiles): the apiserver's call of the scrub webhook
	// (apiserver_admission_webhook_admission_duration_seconds), its CEL
	// matchConditions (apiserver_admission_match_condition_evaluation_seconds)
	// and the webhook handler as controller-runtime times it
	// (controller_runtime_webhook_latency_seconds).
	APICall, APIMatch, Handler histogram
	// Scrubbed counts Create responses that came back as placeholders.
	Scrubbed int
}

// custodyWriterClient is a Vault client with a token holding only the
// custody writer's policy, for the floors' bare KV writes.
func (b *bench) custodyWriterClient(ctx context.Context) (*vaultapi.Client, error) {
	token, err := b.st.Vault.TokenForPolicies(ctx, framework.PolicyCustodyWriter)
	if err != nil {
		return nil, err
	}
	vcfg := vaultapi.DefaultConfig()
	vcfg.Address = b.st.Vault.Addr
	vc, err := vaultapi.NewClient(vcfg)
	if err != nil {
		return nil, fmt.Errorf("creating vault client: %w", err)
	}
	vc.SetToken(token)
	return vc, nil
}

func (b *bench) runScrubCost(ctx context.Context) (*scrubResult, error) {
	const plainNS, custodyNS = "bench-scrub-plain", "bench-scrub-custody"
	if err := b.st.CreateNamespace(ctx, plainNS, nil); err != nil {
		return nil, err
	}
	if err := b.st.CreateNamespace(ctx, custodyNS, map[string]string{custody.NamespaceLabelCustody: "enabled"}); err != nil {
		return nil, err
	}
	m := b.opts.ScrubSecrets
	pairs := make([]keyPair, m)
	for i := range pairs {
		var err error
		if pairs[i], err = newKeyPair(fmt.Sprintf("s%05d", i)); err != nil {
			return nil, fmt.Errorf("generating key pair: %w", err)
		}
	}
	vc, err := b.custodyWriterClient(ctx)
	if err != nil {
		return nil, err
	}
	kv := vc.KVv2(framework.VaultCustodyMount)
	store, err := vaultkv.New(vc, vaultkv.Options{Mount: framework.VaultCustodyMount, Prefix: framework.VaultCustodyPrefix})
	if err != nil {
		return nil, err
	}

	res := &scrubResult{M: m}
	scrub0, _ := gatherHistogram(b.st.Registry, "keyward_scrub_duration_seconds", map[string]string{"path": scrubber.ByWebhook})
	split0 := b.scrubSplit()
	// One at a time and interleaved, so each figure is a single request's
	// latency and drift over the phase hits all four arms alike.
	for i, kp := range pairs {
		name := fmt.Sprintf("s%05d", i)
		t0 := time.Now()
		if _, err := b.kube.CoreV1().Secrets(plainNS).Create(ctx, tlsSecret(plainNS, name, kp), metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating Secret %s/%s: %w", plainNS, name, err)
		}
		res.Plain = append(res.Plain, time.Since(t0))

		t0 = time.Now()
		got, err := b.kube.CoreV1().Secrets(custodyNS).Create(ctx, tlsSecret(custodyNS, name, kp), metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("creating Secret %s/%s: %w", custodyNS, name, err)
		}
		res.Custody = append(res.Custody, time.Since(t0))
		if len(got.Data["tls.key"]) == 0 && got.Annotations[custody.AnnotationScrubbedBy] == scrubber.ByWebhook {
			res.Scrubbed++
		}

		data := map[string]any{"tls.key": string(kp.Key), "tls.crt": string(kp.Cert), "ca.crt": string(kp.Cert)}
		t0 = time.Now()
		if _, err := kv.Put(ctx, framework.VaultCustodyPrefix+"/bench-floor-kv/"+name, data); err != nil {
			return nil, fmt.Errorf("writing KV floor record %s: %w", name, err)
		}
		res.FloorKV = append(res.FloorKV, time.Since(t0))

		rec := custody.Record{Namespace: "bench-floor-adapter", Name: name, Key: kp.Key, Certificate: kp.Cert, CA: kp.Cert,
			Meta: custody.Metadata{CertificateName: name, IssuerName: "bench", IssuerKind: "ClusterIssuer", IssuerGroup: "cert-manager.io"}}
		t0 = time.Now()
		if _, err := store.Put(ctx, rec, 0); err != nil {
			return nil, fmt.Errorf("writing custody floor record %s: %w", name, err)
		}
		res.FloorAdapter = append(res.FloorAdapter, time.Since(t0))
	}
	scrub1, _ := gatherHistogram(b.st.Registry, "keyward_scrub_duration_seconds", map[string]string{"path": scrubber.ByWebhook})
	res.Webhook = scrub1.minus(scrub0)
	split1 := b.scrubSplit()
	res.APICall, res.APIMatch, res.Handler = split1[0].minus(split0[0]), split1[1].minus(split0[1]), split1[2].minus(split0[2])
	return res, nil
}

// apiserverMetrics gathers kube-apiserver's /metrics.
func (b *bench) apiserverMetrics() prometheus.Gatherer {
	return textGatherer("kube-apiserver", func(ctx context.Context) ([]byte, error) {
		return b.kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	})
}

// downWebhook points wh at a closed port with failurePolicy Ignore: the
// apiserver tries it on each matching request and goes on without it.
func downWebhook(wh *admissionv1.MutatingWebhook) {
	wh.ClientConfig = admissionv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1" + webhook.SecretScrubPath)}
	wh.FailurePolicy = ptr.To(admissionv1.Ignore)
}

// scrubSplit reads the histograms scrubResult.APICall, APIMatch and Handler
// are deltas of; a series that cannot be read is empty.
func (b *bench) scrubSplit() [3]histogram {
	api := b.apiserverMetrics()
	hook := map[string]string{"name": webhook.SecretScrubWebhookName, "operation": "CREATE", "type": "admit"}
	var h [3]histogram
	h[0], _ = gatherHistogram(api, "apiserver_admission_webhook_admission_duration_seconds", hook)
	h[1], _ = gatherHistogram(api, "apiserver_admission_match_condition_evaluation_seconds", hook)
	// controller-runtime registers its webhook metrics globally.
	h[2], _ = gatherHistogram(crmetrics.Registry, "controller_runtime_webhook_latency_seconds", map[string]string{"webhook": webhook.SecretScrubPath})
	return h
}

// watcherResult is the exposure of keys while the scrub webhook is down.
type watcherResult struct {
	W, Concurrency int
	// Direct: Create returned → a watch delivered the Secret with an empty
	// tls.key, for the burst (W Secrets, Concurrency Creates in flight).
	Direct sample
	// Began: Create returned → the watcher began the scrub (exposureRun).
	Began, SingleBegan sample
	// Scrub is keyward_scrub_duration_seconds{path="watcher"} over the
	// burst: planning and the Vault write, the part of Direct after Began
	// that is not the Secret Update and its watch delivery.
	Scrub histogram
	// Metric is keyward_key_exposure_seconds over the burst.
	Metric histogram
	// Bypassed counts Create responses that still held the key (webhook really down).
	Bypassed int
	// Single: the same measure with one Secret at a time, each created only
	// after the previous one was scrubbed: the watcher's latency without a
	// queue in front of it.
	Single    sample
	SingleN   int
	Workers   int
	Bypassed1 int
	// Span of the burst: first Create sent → last Create returned, and →
	// last Secret seen scrubbed; CPU is what every process of the stack
	// used over the latter (cpuTimes), which shows whether the machine, not
	// the watcher's queue, set the pace.
	Span burstSpan
	CPU  map[string]time.Duration
	// Floors: the same burst with a floorRemover instead of the watcher.
	Floors []floorRun
	// Paired: Keyward's burst and the Vault floor's, repeated back to back.
	Paired []pairedRound
}

// burstSpan times a burst from its first Create.
type burstSpan struct{ Created, Drained time.Duration }

// busy is the share of the machine's CPUs the burst kept busy, and the CPU
// each Secret cost (its Create, its scrub and everything they caused).
func (w *watcherResult) busy() (share float64, perSecret time.Duration) {
	if w.Span.Drained <= 0 || w.W == 0 {
		return 0, 0
	}
	total := sumDurations(w.CPU)
	return total.Seconds() / (w.Span.Drained.Seconds() * float64(goruntime.NumCPU())), total / time.Duration(w.W)
}

// setScrubWebhook points the Secret scrub webhook at a closed port with
// failurePolicy Ignore (down=true), or restores the saved original.
func (b *bench) setScrubWebhook(ctx context.Context, down bool) error {
	mwc, err := b.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhook.DefaultConfigurationName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", webhook.DefaultConfigurationName, err)
	}
	for i := range mwc.Webhooks {
		wh := &mwc.Webhooks[i]
		if wh.Name != webhook.SecretScrubWebhookName {
			continue
		}
		if down {
			b.savedScrubWebhook = wh.DeepCopy()
			downWebhook(wh)
		} else if b.savedScrubWebhook != nil {
			*wh = *b.savedScrubWebhook.DeepCopy()
		}
	}
	if _, err := b.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, mwc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating MutatingWebhookConfiguration %s: %w", mwc.Name, err)
	}
	// The apiserver picks configuration changes up from its own informer:
	// probe until a Create shows the intended behaviour.
	for i := 0; ; i++ {
		kp, err := newKeyPair("probe")
		if err != nil {
			return err
		}
		name := fmt.Sprintf("probe-%t-%d", down, i)
		got, err := b.kube.CoreV1().Secrets(probeNS).Create(ctx, tlsSecret(probeNS, name, kp), metav1.CreateOptions{})
		if err == nil {
			bypassed := len(got.Data["tls.key"]) > 0
			if bypassed == down {
				return nil
			}
		}
		if i > 100 {
			return fmt.Errorf("scrub webhook down=%t not in effect after %d probes (last error: %v)", down, i, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// watcherNS holds the Secrets whose exposure is measured; probeNS the probes
// that confirm the webhook change took effect.
const watcherNS, probeNS = "bench-watcher", "bench-probe"

// runWatcher measures the watcher's exposure with the scrub webhook down.
// On success it leaves the webhook down for the floor arms and paired
// rounds (runWatcherFloors); the caller restores it. On failure it restores
// it itself.
func (b *bench) runWatcher(ctx context.Context) (*watcherResult, error) {
	for _, ns := range []string{watcherNS, probeNS} {
		if err := b.st.CreateNamespace(ctx, ns, map[string]string{custody.NamespaceLabelCustody: "enabled"}); err != nil {
			return nil, err
		}
	}
	expProbe, _ := gatherHistogram(b.st.Registry, "keyward_key_exposure_seconds", nil)
	if err := b.setScrubWebhook(ctx, true); err != nil {
		return nil, err
	}
	succeeded := false
	defer func() {
		if !succeeded {
			_ = b.setScrubWebhook(context.WithoutCancel(ctx), false)
		}
	}()

	// Exactly one probe (the last) got past the downed webhook; wait for the
	// watcher to scrub it so its exposure stays out of this phase's figures.
	if err := framework.Poll(ctx, 30*time.Second, "probe scrubbed by the watcher", func(context.Context) (bool, error) {
		h, err := gatherHistogram(b.st.Registry, "keyward_key_exposure_seconds", nil)
		return err == nil && h.Count > expProbe.Count, err
	}); err != nil {
		return nil, err
	}

	res := &watcherResult{W: b.opts.WatcherSecrets, Concurrency: b.opts.WatcherConcurrency, SingleN: b.opts.WatcherSingle, Workers: b.st.Options().CustodyWatcherWorkers}
	exp0, _ := gatherHistogram(b.st.Registry, "keyward_key_exposure_seconds", nil)
	byWatcher := map[string]string{"path": scrubber.ByWatcher}
	scrub0, _ := gatherHistogram(b.st.Registry, "keyward_scrub_duration_seconds", byWatcher)
	cpu0 := cpuTimes()
	burst, err := b.exposure(ctx, watcherNS, "w", res.W, res.Concurrency, false)
	if err != nil {
		return nil, err
	}
	res.Direct, res.Began, res.Bypassed, res.Span = burst.Direct, burst.Began, burst.Bypassed, burst.Span
	scrub1, _ := gatherHistogram(b.st.Registry, "keyward_scrub_duration_seconds", byWatcher)
	res.Scrub = scrub1.minus(scrub0)
	res.CPU = cpuDelta(cpu0, cpuTimes())
	// The watcher observes the exposure after its Update returns; give the
	// last observations a moment to land in the histogram.
	if err := framework.Poll(ctx, 30*time.Second, "exposure metric", func(context.Context) (bool, error) {
		h, err := gatherHistogram(b.st.Registry, "keyward_key_exposure_seconds", nil)
		return err == nil && h.Count-exp0.Count >= uint64(res.W), err
	}); err != nil {
		fmt.Printf("warning: %v\n", err)
	}
	exp1, _ := gatherHistogram(b.st.Registry, "keyward_key_exposure_seconds", nil)
	res.Metric = exp1.minus(exp0)
	if res.SingleN > 0 {
		single, err := b.exposure(ctx, watcherNS, "s", res.SingleN, 1, true)
		if err != nil {
			return nil, err
		}
		res.Single, res.SingleBegan, res.Bypassed1 = single.Direct, single.Began, single.Bypassed
	}
	succeeded = true
	return res, nil
}

// exposureRun is what one exposure measurement found.
type exposureRun struct {
	// Direct: Create returned → a watch delivered the Secret scrubbed.
	Direct sample
	// Began: Create returned → the watcher began the scrub (the
	// placeholder's keyward.io/scrubbed-at, stamped by Keyward on this
	// machine's clock when it plans the scrub, before its Vault write; a
	// floor remover's floorBeganAnnotation): the part of Direct spent before
	// the remover took the Secret up.
	Began    sample
	Bypassed int
	Span     burstSpan
}

// exposure creates n key-bearing Secrets named <prefix><index> in ns (with
// the webhook down, for watcherNS), concurrency Creates in flight (oneByOne: each
// Create waits until the previous Secret was scrubbed), and returns what it
// measured (exposureRun).
func (b *bench) exposure(ctx context.Context, ns, prefix string, n, concurrency int, oneByOne bool) (exposureRun, error) {
	pairs := make([]keyPair, n)
	for i := range pairs {
		var err error
		if pairs[i], err = newKeyPair(fmt.Sprintf("%s%05d", prefix, i)); err != nil {
			return exposureRun{}, err
		}
	}
	var mu sync.Mutex
	created := map[string]time.Time{}
	scrubbedAt, began := map[string]time.Time{}, map[string]time.Time{}
	scrubbed := make(chan string, n)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done, err := secretFollower(b.kube, ns, func(_ watch.EventType, obj runtime.Object, at time.Time) {
		s, ok := obj.(*corev1.Secret)
		if !ok || !strings.HasPrefix(s.Name, prefix) {
			return
		}
		if k, has := s.Data["tls.key"]; !has || len(k) > 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, seen := scrubbedAt[s.Name]; seen {
			return
		}
		scrubbedAt[s.Name] = at
		stamp := s.Annotations[custody.AnnotationScrubbedAt]
		if stamp == "" {
			stamp = s.Annotations[floorBeganAnnotation]
		}
		if t, err := time.Parse(time.RFC3339Nano, stamp); err == nil {
			began[s.Name] = t
		}
		scrubbed <- s.Name
	}).start(wctx)
	if err != nil {
		return exposureRun{}, fmt.Errorf("watching Secrets in %s: %w", ns, err)
	}
	defer func() { stop(); <-done }()

	waitScrubbed := func(count int) error {
		deadline := time.After(b.opts.PhaseTimeout)
		for i := 0; i < count; i++ {
			select {
			case <-scrubbed:
			case <-deadline:
				mu.Lock()
				got := len(scrubbedAt)
				mu.Unlock()
				return fmt.Errorf("watcher scrubbed only %d of %d Secrets within %s", got, n, b.opts.PhaseTimeout)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	sem := make(chan struct{}, concurrency)
	errs := make(chan error, n)
	first := time.Now()
	var wg sync.WaitGroup
	var bypassed int
	for i, kp := range pairs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, kp keyPair) {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("%s%05d", prefix, i)
			got, err := b.kube.CoreV1().Secrets(ns).Create(ctx, tlsSecret(ns, name, kp), metav1.CreateOptions{})
			at := time.Now()
			if err != nil {
				errs <- fmt.Errorf("creating Secret %s/%s: %w", ns, name, err)
				return
			}
			mu.Lock()
			created[name] = at
			if len(got.Data["tls.key"]) > 0 {
				bypassed++
			}
			mu.Unlock()
		}(i, kp)
		if oneByOne {
			wg.Wait()
			if err := waitScrubbed(1); err != nil {
				return exposureRun{}, err
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return exposureRun{}, err
	}
	if !oneByOne {
		if err := waitScrubbed(n); err != nil {
			return exposureRun{}, err
		}
	}
	mu.Lock()
	defer mu.Unlock()
	run := exposureRun{Bypassed: bypassed}
	for name, at := range scrubbedAt {
		run.Direct = append(run.Direct, at.Sub(created[name]))
		if t, ok := began[name]; ok {
			run.Began = append(run.Began, t.Sub(created[name]))
		}
		run.Span.Created = max(run.Span.Created, created[name].Sub(first))
		run.Span.Drained = max(run.Span.Drained, at.Sub(first))
	}
	return run, nil
}
