// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/adopt"
	"github.com/keyward-io/keyward/cmd/keyward/app"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/awssm"
	"github.com/keyward-io/keyward/custody/azkv"
	"github.com/keyward-io/keyward/custody/gcpsm"
	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/e2e/framework"
	"github.com/keyward-io/keyward/e2e/framework/keyward"
	awsfake "github.com/keyward-io/keyward/internal/cloudfake/awssm"
	azfake "github.com/keyward-io/keyward/internal/cloudfake/azkv"
	gcpfake "github.com/keyward-io/keyward/internal/cloudfake/gcpsm"
)

// cloudStore is a cloud custody store on its in-process contract fake,
// opened three times with three identities, as production runs it: the
// custody writer (Keyward's pod identity), the guard (metadata only) and a
// gateway's agent (reads values).
type cloudStore struct {
	writer, guard custody.Store
	agent         delivery.RecordReader
}

// TestCustodyInCloudStores runs the custody story once per cloud secret
// manager, each on its CONTRACT FAKE driven through the provider's official
// Go SDK (real AWS, Google Cloud and Azure cannot be reached from here):
// issuance into custody through the scrub webhook, a quiet period with 0
// extra CertificateRequests (the guard reading metadata with its own
// identity), delivery to nginx through the delivery library reading with
// the agent's identity, a renewal reaching nginx, and the record deleted in
// the store: the watcher's audit releases the placeholder and cert-manager
// re-issues exactly once.
func TestCustodyInCloudStores(t *testing.T) {
	t.Parallel()
	nginx := nginxBinary(t)
	for _, tc := range []struct {
		name string
		open func(t *testing.T) cloudStore
	}{
		{"aws-secrets-manager", openAWSStore},
		{"gcp-secret-manager", openGCPStore},
		{"azure-key-vault", openAzureStore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			custodyStoryInStore(t, nginx, tc.open(t))
		})
	}
}

// openAWSStore starts the Secrets Manager fake (AWS JSON 1.1 over HTTP)
// with writer, guard and agent identities (access key IDs) mirroring the
// IAM policies in deploy/aws.
func openAWSStore(t *testing.T) cloudStore {
	t.Helper()
	const region = "eu-west-1"
	srv := awsfake.Start(region, map[string]awsfake.Permission{
		"AKIAWRITER": {Ops: []string{awsfake.OpCreateSecret, awsfake.OpPutSecretValue, awsfake.OpDescribeSecret,
			awsfake.OpTagResource, awsfake.OpUpdateSecretVersionStage, awsfake.OpDeleteSecret, awsfake.OpListSecrets}},
		"AKIAGUARD": {Ops: []string{awsfake.OpDescribeSecret}},
		"AKIAAGENT": {Ops: []string{awsfake.OpGetSecretValue}, NamePrefix: "tls/e2e/"},
	})
	t.Cleanup(srv.Close)
	opts := func(key string) awssm.Options {
		return awssm.Options{
			Region: region, Endpoint: srv.URL, Prefix: custody.ClusterPrefix("tls", "e2e"),
			Credentials: awscreds.NewStaticCredentialsProvider(key, "secret-of-"+key, ""),
		}
	}
	ctx := context.Background()
	w, err := awssm.New(ctx, opts("AKIAWRITER"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := awssm.New(ctx, opts("AKIAGUARD"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := awssm.NewReader(ctx, opts("AKIAAGENT"))
	if err != nil {
		t.Fatal(err)
	}
	return cloudStore{writer: w, guard: g, agent: a}
}

// openGCPStore starts the Secret Manager fake with writer, guard and agent
// identities mirroring the roles in deploy/gcp.
func openGCPStore(t *testing.T) cloudStore {
	t.Helper()
	srv, err := gcpfake.New("keyward-e2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.AddIdentity("writer", gcpfake.Identity{Methods: gcpfake.Writer()})
	srv.AddIdentity("guard", gcpfake.Identity{Methods: gcpfake.Guard()})
	srv.AddIdentity("agent", gcpfake.Identity{Methods: gcpfake.Agent()})
	opts := func(token string) gcpsm.Options {
		return gcpsm.Options{
			Project: "keyward-e2e", Prefix: custody.ClusterPrefix("tls", "e2e"), Endpoint: srv.Addr(),
			DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(srv.TransportCredentials())},
			ClientOptions: []option.ClientOption{
				option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "Bearer"})),
			},
		}
	}
	ctx := context.Background()
	w, err := gcpsm.New(ctx, opts("writer"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gcpsm.New(ctx, opts("guard"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := gcpsm.NewReader(ctx, opts("agent"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(); _ = g.Close(); _ = a.Close() })
	return cloudStore{writer: w, guard: g, agent: a}
}

// openAzureStore starts the Key Vault fake (REST over TLS) with writer,
// guard and agent identities mirroring the roles in deploy/azure.
func openAzureStore(t *testing.T) cloudStore {
	t.Helper()
	srv, err := azfake.New("keyward-e2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.AddIdentity("writer", azfake.Identity{Actions: azfake.Writer()})
	srv.AddIdentity("guard", azfake.Identity{Actions: azfake.Guard()})
	srv.AddIdentity("agent", azfake.Identity{Actions: azfake.Agent()})
	opts := func(token string) azkv.Options {
		return azkv.Options{
			VaultURL: srv.VaultURL(), Prefix: custody.ClusterPrefix("tls", "e2e"), Credential: azureToken(token),
			ClientOptions: &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: &http.Client{Transport: srv.Transport()}}},
		}
	}
	w, err := azkv.New(opts("writer"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := azkv.New(opts("guard"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := azkv.NewReader(opts("agent"))
	if err != nil {
		t.Fatal(err)
	}
	return cloudStore{writer: w, guard: g, agent: a}
}

// azureToken is a fixed bearer token naming one of the fake's identities.
type azureToken string

func (tok azureToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(tok), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// custodyStoryInStore is the story of TestCustodyInCloudStores on one store.
func custodyStoryInStore(t *testing.T, nginx string, cs cloudStore) {
	const ns, host = "shop", "web.shop.example.com"
	st := keyward.StartStackForTest(t, keyward.StackOptions{
		PlaintextEtcd: true,
		CustodyStores: func(context.Context) (custody.Store, custody.Store, error) { return cs.writer, cs.guard, nil },
		// The audit notices a deleted record within 2 s (default 5 min).
		Options: func(o *app.Options) { o.CustodyAuditPeriod = 2 * time.Second },
	})
	ctx := context.Background()
	ref := vaultIssuerAndCustodyNamespace(t, st, st.Client, ns)
	crt := newCertificate(ns, "web", ref, host)
	if err := st.Client.Create(ctx, crt); err != nil {
		t.Fatal(err)
	}
	waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(crt), 60*time.Second)
	secret := crt.Spec.SecretName
	first := currentPlaceholder(t, st, ns, secret)
	if got, want := getSecret(t, st.Client, client.ObjectKey{Namespace: ns, Name: secret}).Annotations[custody.AnnotationPath], cs.writer.Path(ns, secret); got != want {
		t.Fatalf("placeholder names custody path %q, want the cloud store's %q", got, want)
	}
	rec, err := cs.agent.Read(ctx, ns, secret, first.version)
	if err != nil {
		t.Fatalf("agent identity reading the record: %v", err)
	}
	assertKeyMatchesCert(t, rec.Key, getSecret(t, st.Client, client.ObjectKey{Namespace: ns, Name: secret}).Data["tls.crt"])
	assertQuiet(t, st, crt, 10*time.Second)

	// Delivery to nginx through the library, with the agent's identity.
	port := serveFromStore(t, st, nginx, cs, ns, secret)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(st.Vault.RootCAPEM)
	waitServedSerial(t, port, host, roots, first.serial)

	next := renewAndWait(t, st, crt, first)
	waitServedSerial(t, port, host, roots, next.serial)

	// The record deleted in the store: one re-issue, into a new record.
	created, _ := requestsCreated(t, st, ns)
	if err := cs.writer.Delete(ctx, ns, secret); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "re-issue after the record was deleted", func(ctx context.Context) (bool, error) {
		var cur cmapi.Certificate
		if err := st.Client.Get(ctx, client.ObjectKeyFromObject(crt), &cur); err != nil {
			return false, err
		}
		p := currentPlaceholderOK(ctx, st, ns, secret)
		return certificateSettled(&cur) && p.serial != "" && p.serial != next.serial, nil
	})
	third := currentPlaceholder(t, st, ns, secret)
	if _, err := cs.writer.Metadata(ctx, ns, secret); err != nil {
		t.Fatalf("no record after the re-issue: %v", err)
	}
	waitServedSerial(t, port, host, roots, third.serial)
	if after, _ := requestsCreated(t, st, ns); after != created+1 {
		t.Errorf("deleting the record caused %d CertificateRequests, want exactly 1", after-created)
	}
	assertNoKeyAtRest(t, st, ns, false)
}

// currentPlaceholderOK is currentPlaceholder without failing the test: the
// zero value while the Secret is not a placeholder.
func currentPlaceholderOK(ctx context.Context, st *keyward.Stack, ns, name string) placeholderState {
	var s corev1.Secret
	if err := st.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		return placeholderState{}
	}
	p, ok := custody.ParsePlaceholder(&s)
	if !ok {
		return placeholderState{}
	}
	return placeholderState{version: p.Version, serial: p.Serial}
}

// serveFromStore runs the delivery library with the store's agent
// identity, writing files on tmpfs that nginx serves, and returns nginx's port.
func serveFromStore(t *testing.T, st *keyward.Stack, nginx string, cs cloudStore, ns, secret string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	filesDir, err := os.MkdirTemp("/dev/shm", "keyward-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filesDir) })
	nginxDir := t.TempDir()
	files, err := delivery.NewFiles(delivery.FilesOptions{Dir: filesDir, ReloadPidfile: filepath.Join(nginxDir, "nginx.pid")})
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.NewForConfig(st.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ag, err := delivery.NewAgent(delivery.AgentOptions{
		Secrets: []types.NamespacedName{{Namespace: ns, Name: secret}}, Metadata: md,
		Reader: delivery.NewStoreReader(cs.agent), Sinks: []delivery.Sink{files}, Logger: logrFor(t, st, "agent-store"),
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ag.Run(ctx) }()
	waitFor(t, 30*time.Second, "library agent delivered from the cloud store", func(context.Context) (bool, error) { return ag.Ready(), nil })
	return startNginx(t, nginx, nginxDir, filepath.Join(filesDir, ns, secret))
}

// waitServedSerial waits until a TLS handshake with the server on port
// presents the certificate with serial.
func waitServedSerial(t *testing.T, port int, host string, roots *x509.CertPool, serial string) {
	t.Helper()
	got := ""
	waitFor(t, 30*time.Second, "nginx serving serial "+serial, func(ctx context.Context) (bool, error) {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second}, Config: &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}}
		c, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			var verr *tls.CertificateVerificationError
			if errors.As(err, &verr) {
				return false, err
			}
			return false, nil
		}
		defer c.Close()
		got = custody.SerialHex(c.(*tls.Conn).ConnectionState().PeerCertificates[0])
		return got == serial, nil
	})
}

// TestMigrateCustodyToCloudStore: a cluster whose records are in Vault
// moves them to a cloud store (AWS Secrets Manager, on its contract fake)
// without re-keying: Keyward is stopped, the migration copies each
// placeholder's current record and points the placeholder at the copy
// (what `keyward migrate-custody` runs), and Keyward starts on the new
// store. Every Certificate keeps its serial and key, the guard (reading the
// new store's metadata) keeps them Ready with 0 new CertificateRequests,
// and an agent reads the key from the new store.
func TestMigrateCustodyToCloudStore(t *testing.T) {
	t.Parallel()
	const ns = "move"
	st := keyward.StartStackForTest(t, keyward.StackOptions{PlaintextEtcd: true})
	ctx := context.Background()
	ref := vaultIssuerAndCustodyNamespace(t, st, st.Client, ns)
	crts := []*cmapi.Certificate{newCertificate(ns, "web", ref, "web.move.example.com"), newCertificate(ns, "api", ref, "api.move.example.com")}
	serials := map[string]string{}
	for _, crt := range crts {
		if err := st.Client.Create(ctx, crt); err != nil {
			t.Fatal(err)
		}
	}
	for _, crt := range crts {
		waitCertificateReady(t, st.Client, client.ObjectKeyFromObject(crt), 60*time.Second)
		waitSettled(t, st, crt)
		serials[crt.Name] = currentPlaceholder(t, st, ns, crt.Spec.SecretName).serial
	}
	created, _ := requestsCreated(t, st, ns)

	cs := openAWSStore(t)
	if err := st.StopKeyward(); err != nil {
		t.Fatal(err)
	}
	root, err := st.Vault.RootClient()
	if err != nil {
		t.Fatal(err)
	}
	from, err := app.NewVaultSource(root, framework.VaultCustodyMount, framework.VaultCustodyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	m := adopt.Migration{From: from, To: cs.writer, Secrets: st.Client}
	moved, err := m.Migrate(ctx, []string{ns})
	if err != nil {
		t.Fatal(err)
	}
	for _, mv := range moved {
		t.Logf("moved %s/%s: %s -> %s %s", mv.Namespace, mv.Name, mv.From, mv.To, mv.Skipped)
		if mv.Skipped != "" {
			t.Errorf("%s/%s skipped: %s", mv.Namespace, mv.Name, mv.Skipped)
		}
	}
	if len(moved) != len(crts) {
		t.Fatalf("moved %d placeholders, want %d", len(moved), len(crts))
	}
	st.UseCustodyStores(func(context.Context) (custody.Store, custody.Store, error) { return cs.writer, cs.guard, nil })
	if err := st.StartKeyward(ctx); err != nil {
		t.Fatal(err)
	}
	for _, crt := range crts {
		p := currentPlaceholder(t, st, ns, crt.Spec.SecretName)
		if p.serial != serials[crt.Name] {
			t.Errorf("%s: serial %s after the move, %s before", crt.Name, p.serial, serials[crt.Name])
		}
		if got := getSecret(t, st.Client, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName}).Annotations[custody.AnnotationPath]; got != cs.writer.Path(ns, crt.Spec.SecretName) {
			t.Errorf("%s: placeholder names %q, want the new store's path", crt.Name, got)
		}
		rec, err := cs.agent.Read(ctx, ns, crt.Spec.SecretName, p.version)
		if err != nil {
			t.Fatalf("agent reading %s from the new store: %v", crt.Name, err)
		}
		assertKeyMatchesCert(t, rec.Key, getSecret(t, st.Client, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName}).Data["tls.crt"])
	}
	// cert-manager re-evaluated the patched placeholders; the guard, now on
	// the new store, must have kept them: wait for it, then watch.
	waitFor(t, 30*time.Second, "the custody guard acting on the new store", func(context.Context) (bool, error) {
		acted := counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "veto"}) +
			counterValue(t, st, "keyward_guard_decisions_total", map[string]string{"decision": "pass_rewritten"})
		return acted > 0, nil
	})
	assertQuiet(t, st, crts[0], 10*time.Second)
	if after, _ := requestsCreated(t, st, ns); after != created {
		t.Errorf("the move caused %d CertificateRequests, want 0", after-created)
	}
}
