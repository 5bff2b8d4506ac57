// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package scrubber

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/keyward-io/keyward/custody"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// watcherFakeStore is an in-memory custody.Store with check-and-set.
type watcherFakeStore struct {
	mu      sync.Mutex
	records map[string]custody.Record
	putErr  error
	puts    int
	reads   int
}

func (f *watcherFakeStore) Put(_ context.Context, rec custody.Record, cas int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if f.putErr != nil {
		return 0, f.putErr
	}
	k := rec.Namespace + "/" + rec.Name
	cur := f.records[k].Meta.Version
	if cas >= 0 && cas != cur {
		return 0, fmt.Errorf("cas %d != %d: %w", cas, cur, custody.ErrConflict)
	}
	rec.Meta.Version = cur + 1
	f.records[k] = rec
	return cur + 1, nil
}

func (f *watcherFakeStore) Metadata(_ context.Context, ns, name string) (custody.Metadata, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	r, ok := f.records[ns+"/"+name]
	if !ok {
		return custody.Metadata{}, fmt.Errorf("secret %s/%s: %w", ns, name, custody.ErrNotFound)
	}
	return r.Meta, nil
}

func (f *watcherFakeStore) Delete(_ context.Context, ns, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.records, ns+"/"+name)
	return nil
}

func (f *watcherFakeStore) Path(ns, name string) string { return "custody/tls/" + ns + "/" + name }

// listingFakeStore is a watcherFakeStore that is also a custody.Lister.
type listingFakeStore struct {
	*watcherFakeStore
	lists   int
	listErr error
}

func (f *listingFakeStore) List(_ context.Context, ns string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.listErr != nil {
		return nil, f.listErr
	}
	var names []string
	for k := range f.records {
		if n, ok := strings.CutPrefix(k, ns+"/"); ok {
			names = append(names, n)
		}
	}
	return names, nil
}

type watcherFixture struct {
	w      *watcher
	kube   client.Client
	store  *watcherFakeStore
	clock  *clocktesting.FakeClock
	events *events.FakeRecorder
}

func newWatcherFixture(t *testing.T, objs ...client.Object) *watcherFixture {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := cmapi.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	objs = append(objs,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{custody.NamespaceLabelCustody: "enabled"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
	)
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	clk := clocktesting.NewFakeClock(time.Unix(1_750_000_000+int64(time.Now().UnixNano()%1_000_000), 0))
	store := &watcherFakeStore{records: map[string]custody.Record{}}
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewScrubber(store, clk, m, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rec := events.NewFakeRecorder(10)
	return &watcherFixture{
		w: &watcher{
			secrets: kube, live: kube, kube: kube, scrubber: s,
			strict:     NamespaceStrictMode{Reader: kube},
			nsSelector: labels.SelectorFromSet(labels.Set{custody.NamespaceLabelCustody: "enabled"}),
			recorder:   rec, clock: clk, metrics: m, started: clk.Now().Add(-time.Hour), auditPeriod: time.Minute,
		},
		kube: kube, store: store, clock: clk, events: rec,
	}
}

func (f *watcherFixture) get(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := f.kube.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func drainEvents(r *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestWatcherReconcile(t *testing.T) {
	t.Parallel()
	pair := scrubTestNewPair(t, "ecdsa")
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "web-tls"}}

	t.Run("scrubs a key-bearing secret and measures exposure", func(t *testing.T) {
		t.Parallel()
		s := scrubTestSecret(pair)
		f := newWatcherFixture(t, s)
		written := f.clock.Now().Add(-90 * time.Second)
		live := f.get(t, "team-a", "web-tls")
		live.ManagedFields = []metav1.ManagedFieldsEntry{
			{Manager: "cert-manager", Operation: metav1.ManagedFieldsOperationApply, Time: &metav1.Time{Time: written.Add(-time.Hour)},
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{}}}`)}},
			{Manager: "cert-manager", Operation: metav1.ManagedFieldsOperationApply, Time: &metav1.Time{Time: written},
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{"f:tls.key":{}}}`)}},
		}
		if got := exposureStart(live); !got.Equal(written) {
			t.Fatalf("exposureStart = %v, want %v", got, written)
		}

		if _, err := f.w.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		got := f.get(t, "team-a", "web-tls")
		if HoldsKeyMaterial(got) || !isPlaceholder(got) {
			t.Fatalf("secret not scrubbed: annotations %v", got.Annotations)
		}
		if got.Annotations[custody.AnnotationScrubbedBy] != ByWatcher || got.Annotations[custody.AnnotationVersion] != "1" {
			t.Errorf("annotations %v", got.Annotations)
		}
		if r := f.store.records["team-a/web-tls"]; string(r.Key) != string(pair.KeyPEM) || r.Meta.KeySHA256 != got.Annotations[custody.AnnotationKeySHA256] {
			t.Errorf("custody record does not match")
		}
		if n := testutil.CollectAndCount(f.w.metrics.KeyExposure); n != 1 {
			t.Errorf("exposure series = %d", n)
		}
		if v := testutil.ToFloat64(f.w.metrics.ScrubTotal.WithLabelValues(ByWatcher, ResultScrubbed)); v != 1 {
			t.Errorf("scrub_total{watcher,scrubbed} = %v", v)
		}
		if ev := drainEvents(f.events); len(ev) != 1 || !strings.HasPrefix(ev[0], "Normal KeyMovedToCustody") {
			t.Errorf("events = %v", ev)
		}
		// Second pass: nothing to do.
		if _, err := f.w.Reconcile(context.Background(), req); err != nil || f.store.puts != 2-1 {
			t.Errorf("second reconcile: err %v, puts %d", err, f.store.puts)
		}
	})

	t.Run("store failure leaves the key and retries", func(t *testing.T) {
		t.Parallel()
		f := newWatcherFixture(t, scrubTestSecret(pair))
		f.store.putErr = errors.New("vault sealed")
		if _, err := f.w.Reconcile(context.Background(), req); err == nil || !strings.Contains(err.Error(), "vault sealed") {
			t.Fatalf("err = %v", err)
		}
		if got := f.get(t, "team-a", "web-tls"); !HoldsKeyMaterial(got) || isPlaceholder(got) {
			t.Errorf("secret redacted without a custody write")
		}
		if v := testutil.ToFloat64(f.w.metrics.CustodyWriteErrors); v != 1 {
			t.Errorf("custody_write_errors = %v", v)
		}
	})

	t.Run("invalid key is reported, not retried", func(t *testing.T) {
		t.Parallel()
		s := scrubTestSecret(pair)
		s.Data[custody.DataCertificate] = scrubTestNewPair(t, "ecdsa").CertPEM
		f := newWatcherFixture(t, s)
		if _, err := f.w.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if f.store.puts != 0 || !HoldsKeyMaterial(f.get(t, "team-a", "web-tls")) {
			t.Errorf("invalid secret touched")
		}
		if ev := drainEvents(f.events); len(ev) != 1 || !strings.Contains(ev[0], "CustodyRejected") || !strings.Contains(ev[0], "does not match") {
			t.Errorf("events = %v", ev)
		}
	})

	t.Run("namespace not in custody is left alone", func(t *testing.T) {
		t.Parallel()
		s := scrubTestSecret(pair)
		s.Namespace = "other"
		f := newWatcherFixture(t, s)
		if _, err := f.w.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "other", Name: "web-tls"}}); err != nil {
			t.Fatal(err)
		}
		if f.store.puts != 0 || !HoldsKeyMaterial(f.get(t, "other", "web-tls")) {
			t.Errorf("out-of-scope secret touched")
		}
	})

	t.Run("rotationPolicy Never is warned about on the certificate", func(t *testing.T) {
		t.Parallel()
		crt := &cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web"},
			Spec:       cmapi.CertificateSpec{SecretName: "web-tls", PrivateKey: &cmapi.CertificatePrivateKey{RotationPolicy: cmapi.RotationPolicyNever}},
		}
		f := newWatcherFixture(t, scrubTestSecret(pair), crt)
		for range 2 { // scrub, then see the placeholder
			if _, err := f.w.Reconcile(context.Background(), req); err != nil {
				t.Fatal(err)
			}
		}
		ev := drainEvents(f.events)
		if len(ev) != 2 || !strings.HasPrefix(ev[1], "Warning "+ReasonRotationPolicyNeverIgnored) {
			t.Errorf("events = %v", ev)
		}
	})
}

// countingReader counts Gets through it (the watcher's live reads).
type countingReader struct {
	client.Reader
	mu   sync.Mutex
	gets int
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.mu.Lock()
	r.gets++
	r.mu.Unlock()
	return r.Reader.Get(ctx, key, obj, opts...)
}

// TestWatcherStaleCache: the watcher decides on its cached copy and reads the
// live Secret only when the custody write on the cached copy's hint is
// refused; a stale copy never redacts or overwrites anything.
func TestWatcherStaleCache(t *testing.T) {
	t.Parallel()
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "web-tls"}}
	// stale returns a fixture whose cache holds cached while the API holds
	// live, and whose store already holds rec (when set).
	stale := func(t *testing.T, cached, live *corev1.Secret, rec *custody.Record) (*watcherFixture, *countingReader) {
		t.Helper()
		f := newWatcherFixture(t, live)
		cache := newWatcherFixture(t, cached).kube
		lr := &countingReader{Reader: f.kube}
		f.w.secrets, f.w.live = cache, lr
		if rec != nil {
			f.store.records["team-a/web-tls"] = *rec
		}
		return f, lr
	}
	old, cur := scrubTestNewPair(t, "ecdsa"), scrubTestNewPair(t, "ecdsa")
	recordOf := func(p scrubTestKeyPair, version int) *custody.Record {
		plan, err := Plan(scrubTestSecret(p), PlanOptions{By: ByWebhook, Path: "custody/tls/team-a/web-tls"})
		if err != nil {
			t.Fatal(err)
		}
		r := plan.Record
		r.Meta.Version = version
		return &r
	}

	t.Run("cache current: scrubbed without a live read", func(t *testing.T) {
		t.Parallel()
		f, lr := stale(t, scrubTestSecret(cur), scrubTestSecret(cur), nil)
		if _, err := f.w.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if got := f.get(t, "team-a", "web-tls"); HoldsKeyMaterial(got) || got.Annotations[custody.AnnotationVersion] != "1" {
			t.Fatalf("secret not scrubbed at version 1: %v", got.Annotations)
		}
		if lr.gets != 0 || f.store.puts != 1 || f.store.reads != 0 {
			t.Errorf("live reads %d, puts %d, metadata reads %d; want 0, 1, 0", lr.gets, f.store.puts, f.store.reads)
		}
	})

	t.Run("webhook scrubbed the newer version: nothing written or redacted", func(t *testing.T) {
		t.Parallel()
		// The cache still holds the Secret as first created with a key;
		// the API holds the webhook's placeholder for a later write.
		plan, err := Plan(scrubTestSecret(cur), PlanOptions{By: ByWebhook, Path: "custody/tls/team-a/web-tls"})
		if err != nil {
			t.Fatal(err)
		}
		f, lr := stale(t, scrubTestSecret(old), plan.Apply(scrubTestSecret(cur), 1), recordOf(cur, 1))
		before := f.get(t, "team-a", "web-tls")
		if _, err := f.w.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if lr.gets != 1 || f.store.puts != 1 {
			t.Errorf("live reads %d, puts %d; want 1 (after the refused hint), 1 (refused)", lr.gets, f.store.puts)
		}
		if r := f.store.records["team-a/web-tls"]; r.Meta.Version != 1 || string(r.Key) != string(cur.KeyPEM) {
			t.Errorf("record changed: version %d", r.Meta.Version)
		}
		if got := f.get(t, "team-a", "web-tls"); got.ResourceVersion != before.ResourceVersion {
			t.Errorf("placeholder rewritten")
		}
		m := f.w.metrics
		if miss, werr, conflicts := testutil.ToFloat64(m.StaleVersionHints), testutil.ToFloat64(m.CustodyWriteErrors),
			testutil.ToFloat64(m.ScrubTotal.WithLabelValues(ByWatcher, ResultConflict)); miss != 1 || werr != 0 || conflicts != 0 {
			t.Errorf("hint misses %v, write errors %v, scrub_total{conflict} %v; want 1, 0, 0", miss, werr, conflicts)
		}
	})

	t.Run("secret rewritten with another key: the live key is written", func(t *testing.T) {
		t.Parallel()
		// A record from an earlier issuance exists; the cached copy is
		// stale and the live Secret holds a new key, both unscrubbed.
		f, lr := stale(t, scrubTestSecret(old), scrubTestSecret(cur), recordOf(old, 3))
		if _, err := f.w.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		got := f.get(t, "team-a", "web-tls")
		if HoldsKeyMaterial(got) || got.Annotations[custody.AnnotationVersion] != "4" {
			t.Fatalf("secret not scrubbed at version 4: %v", got.Annotations)
		}
		if r := f.store.records["team-a/web-tls"]; r.Meta.Version != 4 || string(r.Key) != string(cur.KeyPEM) {
			t.Errorf("record version %d does not hold the live key", r.Meta.Version)
		}
		if lr.gets != 1 {
			t.Errorf("live reads %d, want 1 (after the refused hint)", lr.gets)
		}
	})
}

func TestWatcherAudit(t *testing.T) {
	t.Parallel()
	pair := scrubTestNewPair(t, "ecdsa")
	f := newWatcherFixture(t, scrubTestSecret(pair))
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "web-tls"}}
	if _, err := f.w.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	drainEvents(f.events)

	// custody.Record present: nothing happens.
	if err := f.w.audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !isPlaceholder(f.get(t, "team-a", "web-tls")) || len(drainEvents(f.events)) != 0 {
		t.Fatalf("audit touched a healthy placeholder")
	}

	// custody.Record deleted: released exactly once.
	if err := f.store.Delete(context.Background(), "team-a", "web-tls"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.w.audit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got := f.get(t, "team-a", "web-tls")
	for _, a := range custody.Annotations() {
		if _, ok := got.Annotations[a]; ok {
			t.Errorf("annotation %s kept", a)
		}
	}
	if _, ok := got.Labels[custody.LabelCustody]; ok {
		t.Errorf("custody label kept")
	}
	if got.Annotations[AnnotationCertificateName] != "web" || len(got.Data[custody.DataKey]) != 0 {
		t.Errorf("release changed more than custody markers")
	}
	ev := drainEvents(f.events)
	if len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning CustodyRecordMissing Custody record custody/tls/team-a/web-tls (version 1) is missing") {
		t.Errorf("events = %v", ev)
	}
	// The released Secret awaits cert-manager: the watcher leaves it alone.
	if _, err := f.w.Reconcile(context.Background(), req); err != nil || f.store.puts != 1 {
		t.Errorf("reconcile after release: %v, puts %d", err, f.store.puts)
	}
}

// With a store that lists, an audit of healthy placeholders costs one
// listing per namespace and no record read; a placeholder missing from the
// listing is confirmed with one metadata read and released.
func TestWatcherAuditLists(t *testing.T) {
	t.Parallel()
	pair := scrubTestNewPair(t, "ecdsa")
	second := scrubTestSecret(pair)
	second.Name = "api-tls"
	f := newWatcherFixture(t, scrubTestSecret(pair), second)
	store := &listingFakeStore{watcherFakeStore: f.store}
	s, err := NewScrubber(store, f.clock, f.w.metrics, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f.w.scrubber = s
	for _, name := range []string{"web-tls", "api-tls"} {
		req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: name}}
		if _, err := f.w.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	drainEvents(f.events)
	if !isPlaceholder(f.get(t, "team-a", "web-tls")) || !isPlaceholder(f.get(t, "team-a", "api-tls")) {
		t.Fatal("fixture: the Secrets were not scrubbed")
	}

	reads := f.store.reads
	if err := f.w.audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if store.lists != 1 || f.store.reads != reads {
		t.Errorf("audit of 2 healthy placeholders in one namespace: %d listings, %d metadata reads; want 1 and 0", store.lists, f.store.reads-reads)
	}
	if got := testutil.ToFloat64(f.w.metrics.AuditStoreCalls.WithLabelValues("list")); got != 1 {
		t.Errorf("keyward_custody_audit_store_calls_total{call=list} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.w.metrics.AuditPlaceholders); got != 2 {
		t.Errorf("keyward_custody_audit_placeholders = %v, want 2", got)
	}
	if ev := drainEvents(f.events); len(ev) != 0 {
		t.Errorf("audit of healthy placeholders: events %v", ev)
	}

	// AuditReadRecords: every record is read, the store is not listed.
	f.w.readRecords = true
	if err := f.w.audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if store.lists != 1 || f.store.reads != reads+2 {
		t.Errorf("audit reading records: %d listings, %d metadata reads; want still 1 and 2", store.lists, f.store.reads-reads)
	}
	f.w.readRecords = false

	// A listing refused (a store policy without list): every record is
	// read instead, and nothing healthy is released.
	store.listErr = errors.New("403 permission denied")
	if err := f.w.audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if store.lists != 2 || f.store.reads != reads+4 || !isPlaceholder(f.get(t, "team-a", "web-tls")) {
		t.Errorf("audit with the listing refused: %d listings, %d metadata reads in all; want 2 and 4, placeholders kept", store.lists, f.store.reads-reads)
	}
	store.listErr = nil
	reads = f.store.reads

	if err := f.store.Delete(context.Background(), "team-a", "web-tls"); err != nil {
		t.Fatal(err)
	}
	if err := f.w.audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if store.lists != 3 || f.store.reads != reads+1 {
		t.Errorf("audit with one record gone: %d listings, %d metadata reads; want 3 listings in all and 1 read", store.lists, f.store.reads-reads)
	}
	if isPlaceholder(f.get(t, "team-a", "web-tls")) || !isPlaceholder(f.get(t, "team-a", "api-tls")) {
		t.Errorf("want web-tls released and api-tls kept")
	}
	if ev := drainEvents(f.events); len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning CustodyRecordMissing") {
		t.Errorf("events = %v", ev)
	}
}

func TestNextPrivateKeyLifetime(t *testing.T) {
	t.Parallel()
	f := newWatcherFixture(t)
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(f.clock.Now().Add(-3 * time.Second))}}
	f.w.observeNextKeyDeleted(s)
	f.w.observeNextKeyDeleted(nil)
	if got := testutil.CollectAndCount(f.w.metrics.NextPrivateKeyLifetime); got != 1 {
		t.Fatalf("series = %d", got)
	}
	var m dto.Metric
	if err := f.w.metrics.NextPrivateKeyLifetime.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetHistogram().GetSampleSum(); got != 3 {
		t.Errorf("lifetime sum = %v, want 3", got)
	}
}

func TestWatcherRestoresLostMarkers(t *testing.T) {
	t.Parallel()
	pair := scrubTestNewPair(t, "ecdsa")
	f := newWatcherFixture(t, scrubTestSecret(pair))
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "web-tls"}}
	if _, err := f.w.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	scrubbed := f.get(t, "team-a", "web-tls")
	drainEvents(f.events)

	// A later writer drops the markers but keeps the redacted data.
	lost := scrubbed.DeepCopy()
	for _, a := range custody.Annotations() {
		delete(lost.Annotations, a)
	}
	delete(lost.Labels, custody.LabelCustody)
	if err := f.kube.Update(context.Background(), lost); err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	got := f.get(t, "team-a", "web-tls")
	for _, a := range []string{custody.AnnotationPath, custody.AnnotationVersion, custody.AnnotationKeySHA256, custody.AnnotationSerial} {
		if got.Annotations[a] != scrubbed.Annotations[a] {
			t.Errorf("annotation %s = %q, want %q", a, got.Annotations[a], scrubbed.Annotations[a])
		}
	}
	if !isPlaceholder(got) {
		t.Errorf("not a placeholder again")
	}
	if ev := drainEvents(f.events); len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning "+ReasonCustodyMarkersRestored) {
		t.Errorf("events = %v", ev)
	}

	// A record for another key (or none) is not grounds to restore.
	other := scrubTestNewPair(t, "ecdsa")
	lost = got.DeepCopy()
	for _, a := range custody.Annotations() {
		delete(lost.Annotations, a)
	}
	delete(lost.Labels, custody.LabelCustody)
	lost.Data[custody.DataCertificate] = other.CertPEM
	if err := f.kube.Update(context.Background(), lost); err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if isPlaceholder(f.get(t, "team-a", "web-tls")) {
		t.Errorf("markers restored for a certificate the record does not hold")
	}
}

func TestExpectedFromAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ann         map[string]string
		wantVersion *int
		wantKey     string
	}{
		{"never scrubbed", nil, ptr.To(0), ""},
		{"earlier placeholder", map[string]string{custody.AnnotationPath: "custody/tls/ns/s", custody.AnnotationVersion: "3", custody.AnnotationKeySHA256: "ab", custody.AnnotationSerial: "01"}, ptr.To(3), "ab"},
		{"garbage version", map[string]string{custody.AnnotationVersion: "x"}, nil, ""},
		{"version 0", map[string]string{custody.AnnotationVersion: "0"}, nil, ""},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: tc.ann, Labels: map[string]string{custody.LabelCustody: custody.LabelCustodyVault}}}
		v, key, _ := expectedFromSecret(s)
		if (v == nil) != (tc.wantVersion == nil) || (v != nil && *v != *tc.wantVersion) || key != tc.wantKey {
			t.Errorf("%s: got %v %q, want %v %q", tc.name, v, key, tc.wantVersion, tc.wantKey)
		}
	}
}
