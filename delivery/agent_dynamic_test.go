// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metafake "k8s.io/client-go/metadata/fake"
)

func TestAgentDynamicAddRemove(t *testing.T) {
	t.Parallel()
	web := types.NamespacedName{Namespace: "ns", Name: "web-tls"}
	api := types.NamespacedName{Namespace: "ns", Name: "api-tls"}
	v1 := testBundle(t, "ns", "web-tls", 1, "web.example")
	reader := &fakeReader{bundles: map[string]*Bundle{}}
	reader.put(v1)
	md := metafake.NewSimpleMetadataClient(testScheme(), placeholder("ns", "web-tls", v1))
	sink := &recordingSink{}
	reg := prometheus.NewRegistry()
	if _, err := NewAgent(AgentOptions{Metadata: md, Reader: reader, Sinks: []Sink{sink}}); err == nil {
		t.Fatal("a static agent without Secrets was accepted")
	}
	a, err := NewAgent(AgentOptions{
		Dynamic: true, Metadata: md, Reader: reader, Sinks: []Sink{sink}, Registerer: reg,
		RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond, Logger: testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(types.NamespacedName{Name: "no-namespace"}); err == nil {
		t.Error("Add accepted a Secret without a namespace")
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { _ = a.Run(ctx); close(runDone) }()
	if !a.Ready() || len(a.Status()) != 0 {
		t.Fatalf("an agent serving nothing: ready=%v status=%v, want ready and empty", a.Ready(), a.Status())
	}

	// Added while running: watched and delivered like a static Secret.
	if err := a.Add(web); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "delivery of the added Secret", a.Ready)
	// A second Secret not in custody yet: the agent is not ready until it is.
	if err := a.Add(api); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(api); err != nil { // adding twice is a no-op
		t.Fatal(err)
	}
	if st := a.Status(); len(st) != 2 || st[0].Secret != "ns/api-tls" || st[0].State != "waiting" || st[1].State != "delivered" {
		t.Fatalf("status = %+v, want api-tls waiting and web-tls delivered", st)
	}
	if a.Ready() {
		t.Error("ready while an added Secret was never delivered")
	}
	a.Remove(api)
	if !a.Ready() || len(a.Status()) != 1 {
		t.Errorf("after removing the undelivered Secret: ready=%v status=%+v", a.Ready(), a.Status())
	}

	// Removed: its series go, and a new version is not delivered (Remove
	// waited for the loop; the informer is stopped).
	if got := testutil.ToFloat64(a.metrics.version.WithLabelValues("ns", "web-tls")); got != 1 {
		t.Fatalf("delivered version gauge = %v, want 1", got)
	}
	a.Remove(web)
	if n := testutil.CollectAndCount(reg, "keyward_agent_delivered_version"); n != 0 {
		t.Errorf("%d delivered_version series after Remove, want 0", n)
	}
	v2 := testBundle(t, "ns", "web-tls", 2, "web.example")
	reader.put(v2)
	res := md.Resource(secretsResource).Namespace("ns").(metafake.MetadataClient)
	if _, err := res.UpdateFake(placeholder("ns", "web-tls", v2), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Added again: served from scratch, at the version the Secret names now.
	if err := a.Add(web); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "delivery after re-adding", func() bool { st := a.Status(); return len(st) == 1 && st[0].Version == 2 })
	want := []string{"ns/web-tls v1 " + v1.Serial, "ns/web-tls v2 " + v2.Serial}
	if got := sink.deliveries(); !slices.Equal(got, want) {
		t.Errorf("deliveries = %v, want %v (nothing while removed, once after re-adding)", got, want)
	}

	cancel()
	select {
	case <-runDone:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if err := a.Add(api); err != nil || len(a.Status()) != 1 {
		t.Errorf("Add after Run ended: err=%v, status=%+v; want a no-op", err, a.Status())
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Run: got %v, want an error", err)
	}
}

// TestAgentDynamicAddBeforeRun: Secrets added before Run start with it.
func TestAgentDynamicAddBeforeRun(t *testing.T) {
	t.Parallel()
	v1 := testBundle(t, "ns", "web-tls", 1, "web.example")
	reader := &fakeReader{bundles: map[string]*Bundle{}}
	reader.put(v1)
	md := metafake.NewSimpleMetadataClient(testScheme(), placeholder("ns", "web-tls", v1))
	sink := &recordingSink{}
	a, err := NewAgent(AgentOptions{Dynamic: true, Metadata: md, Reader: reader, Sinks: []Sink{sink}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(types.NamespacedName{Namespace: "ns", Name: "web-tls"}); err != nil {
		t.Fatal(err)
	}
	if a.Ready() {
		t.Fatal("ready before Run delivered the added Secret")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.Run(ctx) }()
	waitUntil(t, "delivery", a.Ready)
	if got := sink.deliveries(); len(got) != 1 || got[0] != "ns/web-tls v1 "+v1.Serial {
		t.Errorf("deliveries = %v", got)
	}
}

func TestAgentReadyServable(t *testing.T) {
	t.Parallel()
	v1 := testBundle(t, "ns", "web-tls", 1, "web.example")
	reader := &fakeReader{bundles: map[string]*Bundle{}}
	reader.put(v1)
	// web-tls is a placeholder; missing-tls does not exist.
	md := metafake.NewSimpleMetadataClient(testScheme(), placeholder("ns", "web-tls", v1))
	a, err := NewAgent(AgentOptions{Dynamic: true, Metadata: md, Reader: reader, Sinks: []Sink{&recordingSink{}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"web-tls", "missing-tls"} {
		if err := a.Add(types.NamespacedName{Namespace: "ns", Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	if a.ReadyServable() {
		t.Fatal("ready before anything was seen or delivered")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.Run(ctx) }()
	waitUntil(t, "every servable Secret delivered", a.ReadyServable)
	if a.Ready() {
		t.Errorf("Ready (every Secret delivered) with ns/missing-tls absent")
	}
	var delivered, waiting bool
	for _, s := range a.Status() {
		switch s.Secret {
		case "ns/web-tls":
			delivered = s.Version == 1 && s.State == "delivered"
		case "ns/missing-tls":
			waiting = s.State == "waiting"
		}
	}
	if !delivered || !waiting {
		t.Errorf("status %+v: want ns/web-tls delivered at version 1 and ns/missing-tls waiting", a.Status())
	}
}
