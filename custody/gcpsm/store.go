// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"k8s.io/utils/clock"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/internal/payload"
)

// Defaults and limits for Options.
const (
	DefaultPrefix      = "tls"
	DefaultMaxVersions = 5
	MaxVersionsLimit   = 20
	DefaultTimeout     = 10 * time.Second
	// MaxAttempts bounds the tries of one call under RESOURCE_EXHAUSTED
	// (or UNAVAILABLE, for reads).
	MaxAttempts = 4
	// MaxRecordBytes bounds a record's key+certificate+CA: Secret
	// Manager's 64 KiB payload less the framing (payload.MaxOverhead).
	MaxRecordBytes = 64*1024 - payload.MaxOverhead
)

// Annotation and label keys on a record's secret. Annotation keys allow
// no '/', hence no "keyward.io/" prefix.
const (
	annRecord      = "keyward-record" // "<namespace>/<name>"
	annVersion     = "keyward-version"
	annPending     = "keyward-pending" // lease: a writer's start time, RFC 3339
	annCertificate = "keyward-certificate"
	annIssuerName  = "keyward-issuer-name"
	annIssuerKind  = "keyward-issuer-kind"
	annIssuerGroup = "keyward-issuer-group"
	annSerial      = "keyward-serial"
	annNotBefore   = "keyward-not-before"
	annNotAfter    = "keyward-not-after"
	annKeySHA256   = "keyward-key-sha256"
	labelManaged   = "keyward-managed"
	labelNamespace = "keyward-namespace"
)

// Options configure New and NewReader.
type Options struct {
	// Project is the Google Cloud project ID holding the secrets. Required.
	Project string
	// Prefix is "<prefix>" or custody.ClusterPrefix(prefix, cluster): '/'
	// separated DNS-1123 labels. Default DefaultPrefix.
	Prefix string
	// MaxVersions is how many versions of a record are kept; older ones
	// are destroyed after each write (1..MaxVersionsLimit). Default
	// DefaultMaxVersions. Ignored by NewReader.
	MaxVersions int
	// Timeout bounds each Store or Reader call, retries included. Default
	// DefaultTimeout.
	Timeout time.Duration
	// Locations, when set, creates secrets with user-managed replication
	// in these locations (data residency); default automatic replication.
	Locations []string
	// Endpoint overrides the service endpoint (host:port), for a private
	// endpoint or a test fake. Default the library's.
	Endpoint string
	// DialOptions are added to the gRPC dial (a test fake's TLS trust).
	DialOptions []grpc.DialOption
	// ClientOptions are added last (credentials other than Application
	// Default Credentials, such as a test's token source).
	ClientOptions []option.ClientOption
	// Clock stamps leases and write times. Default the real clock.
	Clock clock.PassiveClock
}

// Store is a custody.Store and custody.Lister over Secret Manager. It never
// reads a version's payload: writing needs the keyward-custody-writer role,
// List the keywardCustodyLister role (secretmanager.secrets.list on the
// project), Metadata the keyward-guard role (deploy/gcp).
type Store struct {
	client *secretmanager.Client
	opts   Options
	pid    string
}

var _ custody.Store = (*Store)(nil)

func (o *Options) defaults(writer bool) (string, error) {
	if o.Project == "" {
		return "", errors.New("custody store needs a GCP project ID")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.MaxVersions == 0 {
		o.MaxVersions = DefaultMaxVersions
	}
	if writer && (o.MaxVersions < 1 || o.MaxVersions > MaxVersionsLimit) {
		return "", fmt.Errorf("custody store max versions %d out of range 1..%d", o.MaxVersions, MaxVersionsLimit)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return prefixID(o.Prefix)
}

func newClient(ctx context.Context, o Options) (*secretmanager.Client, error) {
	var co []option.ClientOption
	if o.Endpoint != "" {
		co = append(co, option.WithEndpoint(o.Endpoint))
	}
	for _, d := range o.DialOptions {
		co = append(co, option.WithGRPCDialOption(d))
	}
	co = append(co, o.ClientOptions...)
	c, err := secretmanager.NewClient(ctx, co...)
	if err != nil {
		return nil, fmt.Errorf("creating Secret Manager client for project %s: %w", o.Project, err)
	}
	return c, nil
}

// New returns a Store for opts. ctx is used to create the client only.
func New(ctx context.Context, opts Options) (*Store, error) {
	pid, err := opts.defaults(true)
	if err != nil {
		return nil, err
	}
	c, err := newClient(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Store{client: c, opts: opts, pid: pid}, nil
}

// Close releases the client's connection.
func (s *Store) Close() error { return s.client.Close() }

// Path is the record's secret resource name,
// projects/<project>/secrets/<id>, which gcloud understands. For a name
// stored by its hash (see the package doc) "#<namespace>/<name>" follows,
// so that the path still says which record it is (ParsePath).
func (s *Store) Path(namespace, name string) string {
	full := s.secretName(namespace, name)
	if _, _, hashed, err := s.RecordName(full[strings.LastIndex(full, "/")+1:]); err == nil && hashed {
		return full + "#" + namespace + "/" + name
	}
	return full
}

// ParsePath reverses Path.
func (s *Store) ParsePath(path string) (namespace, name string, err error) {
	rest, ok := strings.CutPrefix(path, "projects/"+s.opts.Project+"/secrets/")
	if !ok {
		return "", "", fmt.Errorf("custody path %q is not a secret of project %s", path, s.opts.Project)
	}
	id, ref, _ := strings.Cut(rest, "#")
	namespace, name, hashed, err := s.RecordName(id)
	if err != nil || !hashed {
		return namespace, name, err
	}
	namespace, name, _ = strings.Cut(ref, "/")
	if validName(namespace, name) != nil || secretID(s.pid, namespace, name) != id {
		return "", "", fmt.Errorf("custody path %q: the record after '#' does not hash to the secret ID", path)
	}
	return namespace, name, nil
}

func (s *Store) secretName(namespace, name string) string {
	return "projects/" + s.opts.Project + "/secrets/" + secretID(s.pid, namespace, name)
}

// current is what Put and Metadata learn about a record's secret.
type current struct {
	secret  *smpb.Secret // nil: no secret
	version int          // newest version, 0 if none
	live    bool         // the newest version is enabled
}

func (s *Store) readCurrent(ctx context.Context, full string) (current, error) {
	sec, err := s.client.GetSecret(ctx, &smpb.GetSecretRequest{Name: full}, readRetry())
	if err != nil {
		if isNotFound(err) {
			return current{}, nil
		}
		return current{}, callError("reading secret", full, err)
	}
	// "latest" is documented as the most recently created version,
	// whatever its state; no list order is relied on.
	cur := current{secret: sec}
	v, err := s.client.GetSecretVersion(ctx, &smpb.GetSecretVersionRequest{Name: full + "/versions/latest"}, readRetry())
	switch {
	case err == nil:
		n, perr := versionNumber(v.GetName())
		if perr != nil {
			return current{}, perr
		}
		cur.version, cur.live = n, v.GetState() == smpb.SecretVersion_ENABLED
	case isNotFound(err):
	default:
		return current{}, callError("reading the latest version of", full, err)
	}
	return cur, nil
}

// Metadata reads the record's annotations and current version number
// (never a payload). See the package doc for Torn.
func (s *Store) Metadata(ctx context.Context, namespace, name string) (custody.Metadata, error) {
	if err := validName(namespace, name); err != nil {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	full := s.secretName(namespace, name)
	cur, err := s.readCurrent(ctx, full)
	if err != nil {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata for secret %s/%s: %w", namespace, name, err)
	}
	if cur.secret == nil || !cur.live {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata for secret %s/%s: %s has no current version: %w", namespace, name, full, custody.ErrNotFound)
	}
	ann := cur.secret.GetAnnotations()
	if r := ann[annRecord]; r != "" && r != namespace+"/"+name {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata for secret %s/%s: %s holds record %q", namespace, name, full, r)
	}
	if ann[annVersion] != strconv.Itoa(cur.version) {
		return custody.Metadata{Version: cur.version, Torn: true}, nil
	}
	return fromAnnotations(ann, cur.version), nil
}

func fromAnnotations(ann map[string]string, version int) custody.Metadata {
	m := custody.Metadata{
		CertificateName: ann[annCertificate],
		IssuerName:      ann[annIssuerName],
		IssuerKind:      ann[annIssuerKind],
		IssuerGroup:     ann[annIssuerGroup],
		Serial:          ann[annSerial],
		KeySHA256:       ann[annKeySHA256],
		Version:         version,
	}
	if t, err := time.Parse(time.RFC3339, ann[annNotBefore]); err == nil {
		m.NotBefore = t
	}
	if t, err := time.Parse(time.RFC3339, ann[annNotAfter]); err == nil {
		m.NotAfter = t
	}
	return m
}

func toAnnotations(namespace, name string, m custody.Metadata, version int) map[string]string {
	ann := map[string]string{annRecord: namespace + "/" + name, annVersion: strconv.Itoa(version)}
	for k, v := range map[string]string{
		annCertificate: m.CertificateName, annIssuerName: m.IssuerName, annIssuerKind: m.IssuerKind,
		annIssuerGroup: m.IssuerGroup, annSerial: m.Serial, annKeySHA256: m.KeySHA256,
	} {
		if v != "" {
			ann[k] = v
		}
	}
	if !m.NotBefore.IsZero() {
		ann[annNotBefore] = m.NotBefore.UTC().Format(time.RFC3339)
	}
	if !m.NotAfter.IsZero() {
		ann[annNotAfter] = m.NotAfter.UTC().Format(time.RFC3339)
	}
	return ann
}

// Delete deletes the record's secret with every version. A record that
// does not exist is not an error.
func (s *Store) Delete(ctx context.Context, namespace, name string) error {
	if err := validName(namespace, name); err != nil {
		return fmt.Errorf("deleting custody record: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	full := s.secretName(namespace, name)
	err := s.client.DeleteSecret(ctx, &smpb.DeleteSecretRequest{Name: full}, writeRetry())
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting custody record for secret %s/%s: %w", namespace, name, callError("deleting", full, err))
	}
	return nil
}
