// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package gcpsm is a CONTRACT FAKE of Google Cloud Secret Manager
// (google.cloud.secretmanager.v1.SecretManagerService) for tests: a gRPC
// server over TLS on a loopback listener, implementing the generated server
// interface for the calls custody/gcpsm makes, so the official Go client
// sends its real requests to it. The real service cannot be reached from
// this project's machines; the fake follows the documented behaviour:
//
//   - secret IDs [A-Za-z0-9_-]{1,255}; payloads at most 64 KiB; annotations
//     at most 16 KiB in all; labels lower-case, at most 63 characters;
//   - versions numbered 1, 2, ... per secret and never reused (a destroyed
//     version keeps its number; deleting the secret starts again at 1);
//     ListSecretVersions lists newest first and understands the filter
//     "state:ENABLED"; accessing a disabled or destroyed version is
//     FAILED_PRECONDITION;
//   - ListSecrets sorted by name, at most one page of the fake's
//     size (SetListPageSize, default DefaultListPageSize) whatever larger
//     page_size is asked, opaque page tokens, total_size; the filter is the
//     subset of the documented language Keyward uses: terms joined by AND,
//     each name:<substring> or labels.<key>=<value>; anything else is
//     INVALID_ARGUMENT. Its resource is the project, so an identity
//     restricted to a SecretPrefix (an IAM condition on resource.name)
//     cannot list;
//   - etags on secrets: UpdateSecret (etag inside the Secret), DeleteSecret
//     and DestroySecretVersion with a stale etag fail FAILED_PRECONDITION;
//     AddSecretVersion does not change the secret's etag;
//   - callers are identified by the bearer token in the gRPC metadata
//     (Identity): no or an unknown token is UNAUTHENTICATED, a method the
//     identity may not call or a resource outside its prefix is
//     PERMISSION_DENIED, a project other than the fake's is PERMISSION_DENIED;
//   - fault hooks: Throttle (RESOURCE_EXHAUSTED for the next N calls), Fail
//     (a chosen code for the next N calls of one method), OnCall (run code
//     before a call is served, to interleave a concurrent writer).
package gcpsm

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
)

// Method names, as the fake's permissions and hooks name them.
const (
	MCreateSecret         = "CreateSecret"
	MGetSecret            = "GetSecret"
	MUpdateSecret         = "UpdateSecret"
	MDeleteSecret         = "DeleteSecret"
	MAddSecretVersion     = "AddSecretVersion"
	MListSecretVersions   = "ListSecretVersions"
	MGetSecretVersion     = "GetSecretVersion"
	MAccessSecretVersion  = "AccessSecretVersion"
	MDestroySecretVersion = "DestroySecretVersion"
	MDisableSecretVersion = "DisableSecretVersion"
	MListSecrets          = "ListSecrets"
)

// Limits the fake enforces, as documented for the service.
const (
	MaxPayloadBytes     = 64 * 1024
	MaxAnnotationsBytes = 16 * 1024
	// DefaultListPageSize is ListSecrets' page size unless
	// SetListPageSize says otherwise: small, so that tests cross pages.
	DefaultListPageSize = 2
)

// Permission sets mirroring the IAM roles in deploy/gcp.

// Writer may do everything but read a version's payload
// (keyward-custody-writer: no secretmanager.versions.access; with
// keywardCustodyLister's secretmanager.secrets.list on the project).
func Writer() []string {
	return []string{MCreateSecret, MGetSecret, MUpdateSecret, MDeleteSecret, MAddSecretVersion,
		MListSecretVersions, MGetSecretVersion, MDestroySecretVersion, MDisableSecretVersion, MListSecrets}
}

// Guard reads metadata only (secrets.get, versions.list, versions.get).
func Guard() []string { return []string{MGetSecret, MListSecretVersions, MGetSecretVersion} }

// Agent reads payloads only (roles/secretmanager.secretAccessor).
func Agent() []string { return []string{MAccessSecretVersion} }

// Admin may call everything.
func Admin() []string { return append(Writer(), MAccessSecretVersion) }

// Identity is what a bearer token may do.
type Identity struct {
	// Methods the identity may call.
	Methods []string
	// SecretPrefix, when set, restricts the identity to secrets whose
	// resource name starts with it (an IAM condition on resource.name).
	SecretPrefix string
}

// Server is the fake. Its zero value is not usable: call New.
type Server struct {
	smpb.UnimplementedSecretManagerServiceServer

	project string
	addr    string
	certPEM *x509.Certificate
	grpcSrv *grpc.Server

	mu         sync.Mutex
	secrets    map[string]*secret
	identities map[string]Identity
	throttle   int
	fail       map[string]failure
	calls      map[string]int
	onCall     func(method string)
	etagSeq    int
	pageSize   int
}

type failure struct {
	code codes.Code
	n    int
}

type secret struct {
	pb       *smpb.Secret
	versions []*version // index i holds version i+1
}

type version struct {
	pb   *smpb.SecretVersion
	data []byte
}

// New starts a fake for project on a loopback TLS listener. Stop it with Stop.
func New(project string) (*Server, error) {
	cert, leaf, err := selfSigned()
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		project: project, addr: lis.Addr().String(), certPEM: leaf,
		secrets: map[string]*secret{}, identities: map[string]Identity{},
		fail: map[string]failure{}, calls: map[string]int{}, pageSize: DefaultListPageSize,
	}
	s.grpcSrv = grpc.NewServer(
		grpc.Creds(credentials.NewServerTLSFromCert(&cert)),
		grpc.UnaryInterceptor(s.intercept),
	)
	smpb.RegisterSecretManagerServiceServer(s.grpcSrv, s)
	go func() { _ = s.grpcSrv.Serve(lis) }()
	return s, nil
}

// Stop stops serving at once.
func (s *Server) Stop() { s.grpcSrv.Stop() }

// Addr is the host:port to dial.
func (s *Server) Addr() string { return s.addr }

// Project is the only project the fake serves.
func (s *Server) Project() string { return s.project }

// TransportCredentials trust the fake's self-signed certificate.
func (s *Server) TransportCredentials() credentials.TransportCredentials {
	pool := x509.NewCertPool()
	pool.AddCert(s.certPEM)
	return credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
}

// AddIdentity lets bearer token act as id.
func (s *Server) AddIdentity(token string, id Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identities[token] = id
}

// Throttle answers the next n calls (any method, any identity) with
// RESOURCE_EXHAUSTED, as the service does past a quota.
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = n
}

// SetListPageSize sets ListSecrets' largest page (at least 1).
func (s *Server) SetListPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = max(n, 1)
}

// Fail answers the next n calls of method with code.
func (s *Server) Fail(method string, code codes.Code, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[method] = failure{code: code, n: n}
}

// OnCall runs f (outside the fake's lock) before each call is served; nil removes it.
func (s *Server) OnCall(f func(method string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall = f
}

// Calls reports how many calls of method reached the fake (throttled and
// denied ones included).
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// SecretIDs lists the secrets that exist, for tests to inspect.
func (s *Server) SecretIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for name := range s.secrets {
		ids = append(ids, name[strings.LastIndex(name, "/")+1:])
	}
	return ids
}

// Payload returns version v's bytes of secret id (nil if none), for tests.
func (s *Server) Payload(id string, v int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets["projects/"+s.project+"/secrets/"+id]
	if sec == nil || v < 1 || v > len(sec.versions) {
		return nil
	}
	return sec.versions[v-1].data
}

func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	s.mu.Lock()
	s.calls[method]++
	hook := s.onCall
	s.mu.Unlock()
	if hook != nil {
		hook(method)
	}
	if err := s.admit(ctx, method, req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// admit applies faults, then authentication and authorisation.
func (s *Server) admit(ctx context.Context, method string, req any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.throttle > 0 {
		s.throttle--
		return status.Error(codes.ResourceExhausted, "Quota exceeded for quota metric 'Access requests' of service 'secretmanager.googleapis.com'")
	}
	if f := s.fail[method]; f.n > 0 {
		f.n--
		s.fail[method] = f
		return status.Errorf(f.code, "injected failure of %s", method)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			token = t
		}
	}
	id, ok := s.identities[token]
	if !ok {
		return status.Error(codes.Unauthenticated, "Request had invalid authentication credentials.")
	}
	res := resourceOf(req)
	if !strings.HasPrefix(res, "projects/"+s.project+"/") && res != "projects/"+s.project {
		return status.Errorf(codes.PermissionDenied, "Permission denied on resource project %s (or it may not exist).", projectOf(res))
	}
	allowed := false
	for _, m := range id.Methods {
		allowed = allowed || m == method
	}
	if !allowed || (id.SecretPrefix != "" && !strings.HasPrefix(res, id.SecretPrefix)) {
		return status.Errorf(codes.PermissionDenied, "Permission denied for %s on resource '%s' (or it may not exist).", method, res)
	}
	return nil
}

func projectOf(res string) string {
	parts := strings.Split(res, "/")
	if len(parts) > 1 {
		return parts[1]
	}
	return res
}

// resourceOf is the resource a request names (its IAM resource).
func resourceOf(req any) string {
	switch r := req.(type) {
	case *smpb.CreateSecretRequest:
		return r.GetParent() + "/secrets/" + r.GetSecretId()
	case *smpb.UpdateSecretRequest:
		return r.GetSecret().GetName()
	case *smpb.AddSecretVersionRequest:
		return r.GetParent()
	case *smpb.ListSecretVersionsRequest:
		return r.GetParent()
	case *smpb.ListSecretsRequest:
		return r.GetParent()
	case interface{ GetName() string }:
		return r.GetName()
	}
	return ""
}

func selfSigned() (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "secretmanager fake"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}
