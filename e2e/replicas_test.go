// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
)

// TestKeywardReplicas: Keyward as the chart deploys it by default, two
// replicas with leader election (replicaCount 2, a PodDisruptionBudget of
// one), both serving the webhooks behind one address (a loopback balancer
// standing in for the webhook Service). The leader is killed with SIGKILL
// while Certificates are being issued: the other replica takes over the
// issuer, the watcher and the audit within the lease, every Certificate
// ends Ready with its key in custody, and no key is ever at rest. Then each
// replica is restarted in turn (SIGTERM, as a rolling update does) while
// renewals run: every renewal completes, again with no key at rest.
func TestKeywardReplicas(t *testing.T) {
	t.Parallel()
	const (
		n     = 60
		ns    = "replicas"
		lease = 4 * time.Second
	)
	st := keyward.StartStackForTest(t, keyward.StackOptions{NoKeyward: true, PlaintextEtcd: true})
	ctx := context.Background()
	c := harnessClient(t, st)
	reps, err := st.StartKeywardReplicas(ctx, 2, func(o *app.Options) {
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = lease, 3*time.Second, 500*time.Millisecond
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reps.Stop)
	leader := waitLeader(t, reps, -1)

	ref := vaultIssuerAndCustodyNamespace(t, st, c, ns)
	start := time.Now()
	createCertificates(t, c, ns, n, ref)

	// Kill the leader once a quarter of the Certificates is Ready: the rest
	// are in flight.
	waitFor(t, 2*time.Minute, fmt.Sprintf("%d Certificates Ready", n/4), func(ctx context.Context) (bool, error) {
		notReady, err := countNotReady(ctx, c, ns)
		return err == nil && n-notReady >= n/4, err
	})
	// The apiserver keeps its webhook connections open (HTTP/2), so it may
	// have opened only one so far: after the kill, the survivor must serve.
	conns := reps.Balancer.Conns()
	notReady, err := countNotReady(ctx, c, ns)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := reps.Procs[leader].Kill(); err != nil {
		t.Fatal(err)
	}
	next := waitLeader(t, reps, leader)
	takeover := time.Since(killed)
	t.Logf("SIGKILL to the leader (replica %d) with %d of %d Certificates not Ready; replica %d leads %s later (lease %s); webhook connections per replica before the kill: %v",
		leader, notReady, n, next, takeover.Round(time.Millisecond), lease, conns)
	if takeover > lease+5*time.Second {
		t.Errorf("takeover took %s, want within the lease (%s) plus a retry period", takeover, lease)
	}
	crts := waitAllSettled(t, c, ns, n, 3*time.Minute)
	if after := reps.Balancer.Conns(); after[next] == 0 {
		t.Errorf("replica %d served no webhook connection after the leader was killed (connections per replica: %v)", next, after)
	}
	t.Logf("%d Certificates Ready %s after creation, leader killed once; admission calls that failed (apiserver log): %s",
		n, time.Since(start).Round(time.Millisecond), webhookFailures(t, st))
	assertAllInCustody(t, st, c, ns, crts)
	created, several := requestsCreated(t, st, ns)
	t.Logf("CertificateRequests created: %d for %d Certificates (extra: %d; Certificates with several: %v)", created, n, created-n, several)

	// Rolling restart while renewals run: bring the killed replica back,
	// then restart each in turn, a batch of renewals started before each.
	if err := reps.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for i := range crts {
		before[crts[i].Name] = secretSerial(t, c, ns, crts[i].Spec.SecretName)
	}
	const batch = 10
	for i := range reps.Procs {
		for j := i * batch; j < (i+1)*batch; j++ {
			forceRenewal(t, st, &crts[j], "renewal during a rolling restart of Keyward")
		}
		if err := reps.Restart(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	waitLeader(t, reps, -1)
	for j := 0; j < len(reps.Procs)*batch; j++ {
		crt := &crts[j]
		waitFor(t, 2*time.Minute, "renewal of "+crt.Name, func(ctx context.Context) (bool, error) {
			var cur cmapi.Certificate
			if err := c.Get(ctx, client.ObjectKeyFromObject(crt), &cur); err != nil {
				return false, err
			}
			return certificateSettled(&cur) && secretSerial(t, c, ns, crt.Spec.SecretName) != before[crt.Name], nil
		})
	}
	crts = waitAllSettled(t, c, ns, n, time.Minute)
	assertAllInCustody(t, st, c, ns, crts)
	t.Logf("rolling restart: %d renewals completed across two replica restarts; admission calls that failed so far (apiserver log): %s",
		len(reps.Procs)*batch, webhookFailures(t, st))
	// The balancer sends every new connection to a replica that accepts it,
	// as the Service does with a ready endpoint: no admission call may find
	// nothing listening. A call cut off in flight by the SIGKILL fails
	// closed and is retried by cert-manager; all of them completed above.
	counts, err := webhookFailureCounts(st)
	if err != nil {
		t.Fatal(err)
	}
	for hook, n := range counts {
		if n.refused > 0 {
			t.Errorf("%d calls to %s found no replica listening", n.refused, hook)
		}
	}
	assertLogsClean(t, st.Dir)
}

// waitLeader waits until a live replica other than not leads, and returns it.
func waitLeader(t *testing.T, reps *keyward.Replicas, not int) int {
	t.Helper()
	leader := -1
	waitFor(t, 30*time.Second, "a Keyward replica leading", func(ctx context.Context) (bool, error) {
		leader = reps.Leader(ctx)
		return leader >= 0 && leader != not, nil
	})
	return leader
}

// assertAllInCustody checks every Certificate's key is in custody and is
// the pair of tls.crt, and that no target Secret revision held a key.
func assertAllInCustody(t *testing.T, st *keyward.Stack, c client.Client, ns string, crts []cmapi.Certificate) {
	t.Helper()
	var problems []string
	for _, crt := range crts {
		if err := checkCustody(t, st, c, ns, crt.Spec.SecretName, ""); err != nil {
			problems = append(problems, fmt.Sprintf("Certificate %s/%s: %v", ns, crt.Name, err))
		}
	}
	reportProblems(t, "custody check", problems)
	assertNoKeyAtRest(t, st, ns, false)
}

// secretSerial is the serial the placeholder Secret's custody record holds.
func secretSerial(t *testing.T, c client.Client, ns, name string) string {
	t.Helper()
	return getSecret(t, c, client.ObjectKey{Namespace: ns, Name: name}).Annotations[custody.AnnotationSerial]
}
