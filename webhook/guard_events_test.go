// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"

	"github.com/keyward-io/keyward/guard"
)

// ghRecorder records events with the object they regard.
type ghRecorder struct {
	mu     sync.Mutex
	events []string
}

var _ events.EventRecorder = (*ghRecorder)(nil)

func (r *ghRecorder) Eventf(regarding, _ runtime.Object, eventtype, reason, action, note string, args ...any) {
	crt, _ := regarding.(*cmapi.Certificate)
	name := fmt.Sprintf("%T", regarding)
	if crt != nil {
		name = "Certificate " + crt.Namespace + "/" + crt.Name
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s: %s %s %s %s", name, eventtype, reason, action, fmt.Sprintf(note, args...)))
}

func (r *ghRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func TestCertificateGuardRecordsDecisions(t *testing.T) {
	t.Parallel()
	// A veto: the Certificate is kept, with the decision's reason.
	f := ghNewFixture(t)
	rec := &ghRecorder{}
	g := f.guard(t, f.reader(t, f.secret, f.cr), WithGuardEvents(rec))
	if resp := g.Handle(context.Background(), f.request(t, f.issuingMissingData)); len(resp.Patch) == 0 {
		t.Fatal("want a veto")
	}
	want := "Certificate apps/web: Normal " + guard.EventReasonKept + " Guard " + guard.DecisionRedactionOnly + ": "
	if got := rec.all(); len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Fatalf("events after a veto: %q, want one starting %q", got, want)
	}
	// The same veto again (another controller's look at the same
	// revision): decided and counted, not recorded again.
	if resp := g.Handle(context.Background(), f.request(t, f.issuingMissingData)); len(resp.Patch) == 0 {
		t.Fatal("want the second look vetoed too")
	}
	if got := rec.all(); len(got) != 1 {
		t.Fatalf("events after two vetoes of one revision: %q, want the first only", got)
	}
	if got := testutil.ToFloat64(g.decisions.WithLabelValues(GuardDecisionVeto)); got != 2 {
		t.Errorf("veto decisions counted %v, want 2", got)
	}

	// The custody record is gone: cert-manager's change passes, and the
	// event says why.
	f2 := ghNewFixture(t)
	f2.store.meta = nil
	rec2 := &ghRecorder{}
	g2 := f2.guard(t, f2.reader(t, f2.secret, f2.cr), WithGuardEvents(rec2))
	if resp := g2.Handle(context.Background(), f2.request(t, f2.issuingMissingData)); len(resp.Patch) != 0 || !resp.Allowed {
		t.Fatalf("record missing: want the change allowed unmodified, got %+v", resp)
	}
	want = "Certificate apps/web: Normal " + guard.EventReasonPassed + " Guard " + guard.DecisionCustodyRecordNotFound + ": "
	if got := rec2.all(); len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Fatalf("events after a pass: %q, want one starting %q", got, want)
	}

	// A dry run stores nothing, so it records nothing.
	recDry := &ghRecorder{}
	dry := f.request(t, f.issuingMissingData)
	dry.DryRun = ptr.To(true)
	f.guard(t, f.reader(t, f.secret, f.cr), WithGuardEvents(recDry)).Handle(context.Background(), dry)
	if got := recDry.all(); len(got) != 0 {
		t.Fatalf("events for a dry run: %q", got)
	}

	// Updates the guard takes no side on record nothing.
	rec3 := &ghRecorder{}
	g3 := f.guard(t, f.reader(t, f.secret, f.cr), WithGuardEvents(rec3))
	g3.Handle(context.Background(), f.request(t, func(c *cmapi.Certificate) { c.Status.Conditions = nil }))
	if got := rec3.all(); len(got) != 0 {
		t.Fatalf("events for an unrelated update: %q", got)
	}
}
