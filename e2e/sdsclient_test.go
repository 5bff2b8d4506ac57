// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// sdsClient is one SDS stream (state of the world), opened the way Envoy
// opens it to an SDS server on a unix socket.
type sdsClient struct {
	conn    *grpc.ClientConn
	cancel  context.CancelFunc
	stream  secretv3.SecretDiscoveryService_StreamSecretsClient
	answers chan sdsAnswer
}

type sdsAnswer struct {
	resp *discoveryv3.DiscoveryResponse
	err  error
}

// sdsSecret is one tls_certificate resource.
type sdsSecret struct {
	name       string
	chain, key []byte
}

// sdsResponse is one decoded DiscoveryResponse.
type sdsResponse struct {
	version, nonce string
	secrets        []sdsSecret
}

func (r sdsResponse) names() []string {
	out := make([]string, 0, len(r.secrets))
	for _, s := range r.secrets {
		out = append(out, s.name)
	}
	return out
}

func dialSDS(t *testing.T, socket string) *sdsClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := secretv3.NewSecretDiscoveryServiceClient(conn).StreamSecrets(ctx)
	if err != nil {
		cancel()
		_ = conn.Close()
		t.Fatalf("opening an SDS stream on %s: %v", socket, err)
	}
	c := &sdsClient{conn: conn, cancel: cancel, stream: stream, answers: make(chan sdsAnswer, 16)}
	go func() {
		for {
			resp, err := stream.Recv()
			c.answers <- sdsAnswer{resp, err}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *sdsClient) close() {
	c.cancel()
	_ = c.conn.Close()
}

// send sends a request for names, acknowledging version/nonce when set.
func (c *sdsClient) send(t *testing.T, names []string, version, nonce string) {
	t.Helper()
	if err := c.stream.Send(&discoveryv3.DiscoveryRequest{
		Node:          &corev3.Node{Id: "e2e-gateway", Cluster: "e2e"},
		TypeUrl:       resource.SecretType,
		ResourceNames: names,
		VersionInfo:   version,
		ResponseNonce: nonce,
	}); err != nil {
		t.Fatalf("sending an SDS request: %v", err)
	}
}

// request sends a request for names and returns the first answer.
func (c *sdsClient) request(t *testing.T, names []string, version, nonce string, timeout time.Duration) sdsResponse {
	t.Helper()
	c.send(t, names, version, nonce)
	return c.next(t, timeout)
}

// ack acknowledges r, as Envoy does after applying it.
func (c *sdsClient) ack(t *testing.T, r sdsResponse, names []string) {
	t.Helper()
	c.send(t, names, r.version, r.nonce)
}

// next waits for the next response on the stream.
func (c *sdsClient) next(t *testing.T, timeout time.Duration) sdsResponse {
	t.Helper()
	select {
	case a := <-c.answers:
		if a.err != nil {
			t.Fatalf("SDS stream: %v", a.err)
		}
		return decodeSDS(t, a.resp)
	case <-time.After(timeout):
		t.Fatalf("no SDS response within %v", timeout)
	}
	return sdsResponse{}
}

func decodeSDS(t *testing.T, resp *discoveryv3.DiscoveryResponse) sdsResponse {
	t.Helper()
	out := sdsResponse{version: resp.GetVersionInfo(), nonce: resp.GetNonce()}
	for _, any := range resp.GetResources() {
		var s tlsv3.Secret
		if err := any.UnmarshalTo(&s); err != nil {
			t.Fatalf("SDS resource of type %s: %v", any.GetTypeUrl(), err)
		}
		tc := s.GetTlsCertificate()
		if tc == nil {
			t.Fatalf("SDS resource %s is not a tls_certificate", s.GetName())
		}
		out.secrets = append(out.secrets, sdsSecret{name: s.GetName(),
			chain: tc.GetCertificateChain().GetInlineBytes(), key: tc.GetPrivateKey().GetInlineBytes()})
	}
	return out
}
