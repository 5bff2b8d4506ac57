// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package awssm is a CONTRACT FAKE of AWS Secrets Manager for tests: an
// in-process HTTP server (httptest) speaking the service's documented AWS
// JSON 1.1 protocol (POST /, X-Amz-Target "secretsmanager.<Operation>",
// JSON bodies, errors as a JSON "__type" and the X-Amzn-ErrorType header)
// for the operations custody/awssm calls, so the official
// aws-sdk-go-v2 client sends its real, signed requests to it. Real AWS
// cannot be reached from this project's machines: what the fake does is
// what the Secrets Manager API reference documents, and only that much:
//
//   - names of 1..512 characters of [A-Za-z0-9/_+=.@-]; SecretBinary and
//     SecretString at most 64 KiB (ValidationException);
//   - versions identified by the caller's ClientRequestToken (32..64
//     characters): the same token with the same value is an idempotent
//     success, with another value ResourceExistsException;
//   - staging labels: PutSecretValue attaches VersionStages (default
//     AWSCURRENT), moving each label from the version that had it; moving
//     AWSCURRENT moves AWSPREVIOUS to the version that lost it; at most 20
//     labels on a secret (LimitExceededException); versions without a label
//     are deprecated and dropped beyond 100 versions; DescribeSecret's
//     VersionIdsToStages lists labelled versions only;
//   - tags: at most 50, keys 1..128 and values 0..256 characters, "aws:"
//     keys reserved;
//   - DeleteSecret with ForceDeleteWithoutRecovery removes the secret at
//     once; otherwise it is marked deleted (DescribeSecret shows
//     DeletedDate, other calls InvalidRequestException) and its name stays
//     taken;
//   - ListSecrets: secrets in creation order (SortOrder desc
//     reverses it), without those marked deleted unless
//     IncludePlannedDeletion; Filters with the keys name, tag-key and
//     tag-value (case-sensitive prefix matches, "!" negates, a filter's
//     values are alternatives, filters all apply); MaxResults 1..100; each
//     call examines at most one page of secrets (SetListPageSize, default
//     DefaultListPageSize) and returns those that match, so a filtered
//     page may be short or empty and still carry a NextToken, as the API
//     reference warns; an unknown NextToken is InvalidNextTokenException.
//     ListSecrets names no secret: only an identity whose Permission has
//     no NamePrefix may call it, as an IAM policy must grant it on
//     Resource "*";
//   - callers are identified by the access key ID of the SigV4
//     Authorization header: an unknown key is UnrecognizedClientException, a
//     credential scoped to another region InvalidSignatureException, an
//     operation or a secret name outside the identity's Permission
//     AccessDeniedException;
//   - fault hooks: Throttle (ThrottlingException for the next N calls) and
//     OnCall (run code before a call is served, to interleave a concurrent
//     writer).
//
// Signatures are not verified: the fake checks who calls, not that the
// SDK's SigV4 implementation is right.
package awssm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Operations, as the fake's permissions and hooks name them.
const (
	OpCreateSecret             = "CreateSecret"
	OpPutSecretValue           = "PutSecretValue"
	OpGetSecretValue           = "GetSecretValue"
	OpDescribeSecret           = "DescribeSecret"
	OpTagResource              = "TagResource"
	OpUpdateSecretVersionStage = "UpdateSecretVersionStage"
	OpDeleteSecret             = "DeleteSecret"
	OpListSecrets              = "ListSecrets"
)

// Limits the fake enforces, as documented for the service.
const (
	MaxValueBytes      = 64 * 1024
	MaxTags            = 50
	MaxTagValue        = 256
	MaxLabelsPerSecret = 20
	MaxVersions        = 100
	AccountID          = "123456789012"
	// MaxListResults is ListSecrets' largest MaxResults.
	MaxListResults = 100
	// DefaultListPageSize is how many secrets one ListSecrets call
	// examines unless SetListPageSize says otherwise: small, so that
	// tests cross pages.
	DefaultListPageSize = 2
)

// Permission is what one identity (access key ID) may do: the operations
// it may call, on secrets whose name starts with NamePrefix (empty: any).
type Permission struct {
	Ops        []string
	NamePrefix string
}

// Server is the fake. Its zero value is not usable: call Start.
type Server struct {
	// URL is the endpoint to give the SDK (BaseEndpoint).
	URL string
	// Region is the only region the fake answers for.
	Region string

	srv     *httptest.Server
	mu      sync.Mutex
	secrets map[string]*secret
	perms   map[string]Permission
	onCall  map[string][]func()
	calls   map[string]int
	thr     int
	seq     int
	page    int
}

// Start serves a fake Secrets Manager for region, with identities mapping
// access key IDs to what they may do.
func Start(region string, identities map[string]Permission) *Server {
	s := &Server{Region: region, secrets: map[string]*secret{}, perms: identities,
		onCall: map[string][]func(){}, calls: map[string]int{}, page: DefaultListPageSize}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Throttle makes the next n calls fail with ThrottlingException.
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.thr = n
}

// SetListPageSize sets how many secrets one ListSecrets call examines
// (1..MaxListResults), the page size when the caller asks for more.
func (s *Server) SetListPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.page = min(max(n, 1), MaxListResults)
}

// OnCall runs f once, before the next call of op is served (outside the
// fake's lock, so f may call the fake through the SDK).
func (s *Server) OnCall(op string, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall[op] = append(s.onCall[op], f)
}

// Calls returns how many calls of op reached the fake (throttled ones too).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// SecretNames lists the secrets that exist, deleted ones included.
func (s *Server) SecretNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.secrets {
		names = append(names, n)
	}
	return names
}

// VersionCount returns how many versions the secret keeps (deprecated ones
// included), or -1 if there is no such secret.
func (s *Server) VersionCount(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[name]
	if sec == nil {
		return -1
	}
	return len(sec.versions)
}

// apiError is an error answer of the JSON 1.1 protocol.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func errorf(typ, format string, args ...any) *apiError {
	status := http.StatusBadRequest
	switch typ {
	case "InternalServiceError":
		status = http.StatusInternalServerError
	case "UnrecognizedClientException", "InvalidSignatureException":
		status = http.StatusForbidden
	}
	return &apiError{status: status, typ: typ, msg: fmt.Sprintf(format, args...)}
}

var credentialRE = regexp.MustCompile(`Credential=([^/,]+)/[0-9]{8}/([^/,]+)/([^/,]+)/aws4_request`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	if r.Method != http.MethodPost || !ok || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1") {
		writeError(w, errorf("UnknownOperationException", "unknown operation"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, errorf("SerializationException", "reading body: %v", err))
		return
	}
	s.runHooks(op)
	out, aerr := s.call(r.Header.Get("Authorization"), op, body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", fmt.Sprintf("fake-%d", time.Now().UnixNano()))
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) runHooks(op string) {
	s.mu.Lock()
	hooks := s.onCall[op]
	delete(s.onCall, op)
	s.mu.Unlock()
	for _, f := range hooks {
		f()
	}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	w.Header().Set("X-Amzn-RequestId", fmt.Sprintf("fake-%d", time.Now().UnixNano()))
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
}

// call authenticates, applies faults and permissions, and runs op, all
// under the fake's lock: every operation is atomic, as the service's are.
func (s *Server) call(auth, op string, body []byte) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	m := credentialRE.FindStringSubmatch(auth)
	if m == nil {
		return nil, errorf("MissingAuthenticationTokenException", "Request is missing Authentication Token")
	}
	perm, known := s.perms[m[1]]
	switch {
	case !known:
		return nil, errorf("UnrecognizedClientException", "The security token included in the request is invalid.")
	case m[2] != s.Region || m[3] != "secretsmanager":
		return nil, errorf("InvalidSignatureException", "Credential should be scoped to a valid region and service, not '%s/%s'.", m[2], m[3])
	}
	if s.thr > 0 {
		s.thr--
		return nil, errorf("ThrottlingException", "Rate exceeded")
	}
	var in request
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errorf("SerializationException", "body is not the expected JSON")
	}
	if err := s.authorize(m[1], perm, op, in.target()); err != nil {
		return nil, err
	}
	h, ok := s.handlers()[op]
	if !ok {
		return nil, errorf("UnknownOperationException", "operation %s is not served by this fake", op)
	}
	return h(&in)
}

func (s *Server) authorize(key string, p Permission, op, name string) *apiError {
	allowed := false
	for _, o := range p.Ops {
		allowed = allowed || o == op
	}
	if allowed && strings.HasPrefix(name, p.NamePrefix) {
		return nil
	}
	if name == "" { // an action on no resource (ListSecrets)
		return errorf("AccessDeniedException",
			"User: arn:aws:sts::%s:assumed-role/%s/session is not authorized to perform: secretsmanager:%s because no identity-based policy allows the secretsmanager:%s action",
			AccountID, key, op, op)
	}
	return errorf("AccessDeniedException",
		"User: arn:aws:sts::%s:assumed-role/%s/session is not authorized to perform: secretsmanager:%s on resource: %s because no identity-based policy allows the secretsmanager:%s action",
		AccountID, key, op, name, op)
}
