// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package azkv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"k8s.io/utils/clock"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/internal/payload"
)

// Defaults and limits for Options.
const (
	DefaultPrefix      = "tls"
	DefaultMaxVersions = 5
	MaxVersionsLimit   = 20
	DefaultTimeout     = 15 * time.Second
	// MaxRetries bounds the retries of one request (429; 408 and 5xx for reads).
	MaxRetries = 3
	// MaxRetryDelay is the longest Retry-After honoured; a longer one fails at once.
	MaxRetryDelay = 4 * time.Second
	// MaxValueBytes is Key Vault's limit on a secret value.
	MaxValueBytes = 25 * 1024
	// MaxRecordBytes bounds a record's key+certificate+CA: the value is
	// the framed record in base64.
	MaxRecordBytes = MaxValueBytes/4*3 - payload.MaxOverhead
	// ContentType marks a custody record's value.
	ContentType = "application/vnd.keyward.record.v1+base64"
)

// Tag names on each version (at most 15 tags, values at most 256 characters).
const (
	tagNamespace   = "keyward-namespace"
	tagName        = "keyward-name"
	tagVersion     = "keyward-version"
	tagSuperseded  = "keyward-superseded"
	tagCertificate = "keyward-certificate"
	tagIssuerName  = "keyward-issuer-name"
	tagIssuerKind  = "keyward-issuer-kind"
	tagIssuerGroup = "keyward-issuer-group"
	tagSerial      = "keyward-serial"
	tagNotBefore   = "keyward-not-before"
	tagNotAfter    = "keyward-not-after"
	tagKeySHA256   = "keyward-key-sha256"
)

// Options configure New and NewReader.
type Options struct {
	// VaultURL is the vault's URL, https://<vault>.vault.azure.net/. Required.
	VaultURL string
	// Prefix is "<prefix>" or custody.ClusterPrefix(prefix, cluster).
	// Default DefaultPrefix.
	Prefix string
	// MaxVersions is how many versions stay enabled (1..MaxVersionsLimit).
	// Default DefaultMaxVersions. Ignored by NewReader.
	MaxVersions int
	// Timeout bounds each Store or Reader call, retries included. Default
	// DefaultTimeout.
	Timeout time.Duration
	// KeepDeleted leaves deleted records soft-deleted (recoverable for the
	// vault's retention) instead of purging them.
	KeepDeleted bool
	// Credential authenticates; default azidentity.NewDefaultAzureCredential
	// (Workload Identity on AKS).
	Credential azcore.TokenCredential
	// ClientOptions are passed to azsecrets (a test fake's transport); the
	// store sets their Retry options.
	ClientOptions *azsecrets.ClientOptions
	// Clock stamps write times. Default the real clock.
	Clock clock.PassiveClock
}

// Store is a custody.Store and custody.Lister over one Key Vault. It never
// reads a value: writing and List need the keyward-custody-writer role,
// Metadata keyward-guard (deploy/azure).
type Store struct {
	client *azsecrets.Client
	opts   Options
	pe     string
}

var _ custody.Store = (*Store)(nil)

func (o *Options) defaults(writer bool) (string, error) {
	if o.VaultURL == "" {
		return "", errors.New("custody store needs an Azure Key Vault URL")
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
	return prefixName(o.Prefix)
}

// shouldRetry retries throttling always, and transient failures only for
// requests that change nothing.
func shouldRetry(resp *http.Response, err error) bool {
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		return true
	}
	var method string
	if resp != nil && resp.Request != nil {
		method = resp.Request.Method
	}
	if err != nil {
		return false
	}
	return method == http.MethodGet && (resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500)
}

func newClient(o Options) (*azsecrets.Client, error) {
	cred := o.Credential
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("azure default credential: %w", err)
		}
		cred = c
	}
	var co azsecrets.ClientOptions
	if o.ClientOptions != nil {
		co = *o.ClientOptions
	}
	co.Retry = policy.RetryOptions{
		MaxRetries: MaxRetries, RetryDelay: 250 * time.Millisecond, MaxRetryDelay: MaxRetryDelay,
		ShouldRetry: shouldRetry,
	}
	c, err := azsecrets.NewClient(o.VaultURL, cred, &co)
	if err != nil {
		return nil, fmt.Errorf("creating Key Vault client for %s: %w", o.VaultURL, err)
	}
	return c, nil
}

// New returns a Store for opts.
func New(opts Options) (*Store, error) {
	pe, err := opts.defaults(true)
	if err != nil {
		return nil, err
	}
	c, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	return &Store{client: c, opts: opts, pe: pe}, nil
}

// Path is the record's secret URL in the vault (without a version). For a
// name stored by its hash (see the package doc) "#<namespace>/<name>"
// follows, so that the path still says which record it is (ParsePath).
func (s *Store) Path(namespace, name string) string {
	sn := secretName(s.pe, namespace, name)
	p := trimSlash(s.opts.VaultURL) + "/secrets/" + sn
	if _, _, hashed, err := s.RecordName(sn); err == nil && hashed {
		p += "#" + namespace + "/" + name
	}
	return p
}

// ParsePath reverses Path.
func (s *Store) ParsePath(path string) (namespace, name string, err error) {
	rest, ok := strings.CutPrefix(path, trimSlash(s.opts.VaultURL)+"/secrets/")
	if !ok {
		return "", "", fmt.Errorf("custody path %q is not a secret of vault %s", path, s.opts.VaultURL)
	}
	sn, ref, _ := strings.Cut(rest, "#")
	namespace, name, hashed, err := s.RecordName(sn)
	if err != nil || !hashed {
		return namespace, name, err
	}
	namespace, name, _ = strings.Cut(ref, "/")
	if validName(namespace, name) != nil || !strings.EqualFold(secretName(s.pe, namespace, name), sn) {
		return "", "", fmt.Errorf("custody path %q: the record after '#' does not hash to the secret name", path)
	}
	return namespace, name, nil
}

func trimSlash(u string) string {
	for len(u) > 0 && u[len(u)-1] == '/' {
		u = u[:len(u)-1]
	}
	return u
}

// Metadata reads the current version's tags (never a value).
func (s *Store) Metadata(ctx context.Context, namespace, name string) (custody.Metadata, error) {
	if err := validName(namespace, name); err != nil {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	sn := secretName(s.pe, namespace, name)
	st, err := listVersions(ctx, s.client, sn)
	if err != nil {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata for secret %s/%s: %w", namespace, name, err)
	}
	cur := st.current()
	if len(cur) == 0 {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata for secret %s/%s: %s has no current version: %w", namespace, name, sn, custody.ErrNotFound)
	}
	if len(cur) > 1 {
		return custody.Metadata{Version: st.max, Torn: true}, nil
	}
	tags := cur[0].tags
	if tags[tagNamespace] != namespace || tags[tagName] != name {
		return custody.Metadata{}, fmt.Errorf("reading custody metadata for secret %s/%s: %s holds record %s/%s", namespace, name, sn, tags[tagNamespace], tags[tagName])
	}
	return fromTags(tags, st.max), nil
}

func fromTags(tags map[string]string, version int) custody.Metadata {
	m := custody.Metadata{
		CertificateName: tags[tagCertificate], IssuerName: tags[tagIssuerName], IssuerKind: tags[tagIssuerKind],
		IssuerGroup: tags[tagIssuerGroup], Serial: tags[tagSerial], KeySHA256: tags[tagKeySHA256], Version: version,
	}
	if t, err := time.Parse(time.RFC3339, tags[tagNotBefore]); err == nil {
		m.NotBefore = t
	}
	if t, err := time.Parse(time.RFC3339, tags[tagNotAfter]); err == nil {
		m.NotAfter = t
	}
	return m
}

func toTags(rec custody.Record, version int) map[string]*string {
	tags := map[string]*string{}
	add := func(k, v string) {
		if v != "" {
			tags[k] = &v
		}
	}
	add(tagNamespace, rec.Namespace)
	add(tagName, rec.Name)
	add(tagVersion, strconv.Itoa(version))
	add(tagCertificate, rec.Meta.CertificateName)
	add(tagIssuerName, rec.Meta.IssuerName)
	add(tagIssuerKind, rec.Meta.IssuerKind)
	add(tagIssuerGroup, rec.Meta.IssuerGroup)
	add(tagSerial, rec.Meta.Serial)
	add(tagKeySHA256, rec.Meta.KeySHA256)
	if !rec.Meta.NotBefore.IsZero() {
		add(tagNotBefore, rec.Meta.NotBefore.UTC().Format(time.RFC3339))
	}
	if !rec.Meta.NotAfter.IsZero() {
		add(tagNotAfter, rec.Meta.NotAfter.UTC().Format(time.RFC3339))
	}
	return tags
}
