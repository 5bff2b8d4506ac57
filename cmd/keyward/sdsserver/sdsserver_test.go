// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package sdsserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metafake "k8s.io/client-go/metadata/fake"

	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/delivery/sds"
)

func parse(t *testing.T, args ...string) *Options {
	t.Helper()
	o := NewOptions()
	fs := pflag.NewFlagSet("sds", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestValidate(t *testing.T) {
	t.Parallel()
	vault := []string{"--vault-server", "https://vault:8200"}
	o := parse(t, append(vault, "--gateway", "shop/gw", "--gateway-class", "eg", "--name", "sds://istio-system/ingress-tls", "--name", "shop/extra")...)
	if err := o.Validate(); err != nil {
		t.Fatalf("valid flags rejected: %v", err)
	}
	sel, _ := o.selection()
	want := sds.Selection{
		Gateways:       []types.NamespacedName{{Namespace: "shop", Name: "gw"}},
		GatewayClasses: []string{"eg"},
		Names:          []types.NamespacedName{{Namespace: "istio-system", Name: "ingress-tls"}, {Namespace: "shop", Name: "extra"}},
	}
	if len(sel.Gateways) != 1 || sel.Gateways[0] != want.Gateways[0] || len(sel.Names) != 2 || sel.Names[0] != want.Names[0] || sel.Names[1] != want.Names[1] || len(sel.GatewayClasses) != 1 {
		t.Errorf("selection = %+v, want %+v", sel, want)
	}
	if o.Socket != DefaultSocket || o.Shared.HealthAddr != ":8081" || o.Shared.VaultRole != "keyward-agent" {
		t.Errorf("defaults: socket %q health %q role %q", o.Socket, o.Shared.HealthAddr, o.Shared.VaultRole)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{vault, "give at least one --gateway, --gateway-class or --name"},
		{[]string{"--name", "a/b"}, "--vault-server is required"},
		{append(vault, "--gateway", "gw"), `--gateway "gw" is not NAMESPACE/NAME`},
		{append(vault, "--gateway", "sds://shop/gw"), `--gateway "sds://shop/gw" is not NAMESPACE/NAME`},
		{append(vault, "--gateway-class", ""), "--gateway-class is empty"},
		{append(vault, "--name", "a/b/c"), `--name "a/b/c" is not NAMESPACE/NAME`},
		{append(vault, "--name", "a/b", "--socket", ""), "--socket is required"},
		{append(vault, "--name", "a/b", "--log-format", "xml"), "--log-format"},
	} {
		err := parse(t, tc.args...).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	// Flags of `keyward agent` that make no sense here are not registered.
	fs := pflag.NewFlagSet("sds", pflag.ContinueOnError)
	NewOptions().AddFlags(fs)
	for _, f := range []string{"secret", "sink", "files-dir", "resync-period", "namespace"} {
		if fs.Lookup(f) != nil {
			t.Errorf("--%s is registered", f)
		}
	}
}

func TestReadyzWaitsForGatewaysAndDeliveries(t *testing.T) {
	t.Parallel()
	s := metafake.NewTestScheme()
	metav1.AddMetaToScheme(s)
	sink := sds.NewSink(sds.SinkOptions{})
	a, err := delivery.NewAgent(delivery.AgentOptions{Dynamic: true, Metadata: metafake.NewSimpleMetadataClient(s), Reader: noReader{}, Sinks: []delivery.Sink{sink}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := sds.NewTracker(sds.TrackerOptions{Selection: sds.Selection{Names: []types.NamespacedName{{Namespace: "shop", Name: "web-tls"}}}, Target: sds.Serving(a, sink)})
	if err != nil {
		t.Fatal(err)
	}
	h := healthHandler(a, tr)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "Gateways") {
		t.Errorf("before the tracker ran: /readyz %d %q, want 503 naming the Gateways", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _ = tr.Run(ctx) }()
	for !tr.Synced() {
		if ctx.Err() != nil {
			t.Fatal("tracker never synced")
		}
		time.Sleep(time.Millisecond)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "delivered") {
		t.Errorf("allowed Secret not delivered: /readyz %d %q, want 503", code, body)
	}
	for _, p := range []string{"/livez", "/healthz"} {
		if code, _ := get(p); code != http.StatusOK {
			t.Errorf("%s = %d, want 200", p, code)
		}
	}
	if code, body := get("/status"); code != http.StatusOK || !strings.Contains(body, `"shop/web-tls"`) {
		t.Errorf("/status %d %q, want the allowed Secret listed", code, body)
	}
}

type noReader struct{}

func (noReader) Read(context.Context, string, string, int) (*delivery.Bundle, error) {
	return nil, delivery.ErrNotFound
}
