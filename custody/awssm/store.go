// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/custody/internal/payload"
)

// Defaults and limits of Options.
const (
	DefaultPrefix      = "tls"
	DefaultMaxVersions = 5
	// MaxVersionsLimit bounds MaxVersions: a secret holds at most 20
	// staging labels, AWSCURRENT, AWSPREVIOUS and one "v<N>" per kept version.
	MaxVersionsLimit   = 10
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 4
	DefaultMaxBackoff  = time.Second
	// MaxValueBytes is Secrets Manager's limit on a version's SecretBinary.
	MaxValueBytes = 65536
	// MaxRecordBytes bounds a record's key+certificate+CA.
	MaxRecordBytes = MaxValueBytes - payload.MaxOverhead
	// MaxPrefixLength leaves room in a 512-character secret name for a
	// namespace (63), a Secret name (253) and two slashes.
	MaxPrefixLength = 512 - 63 - 253 - 2
	// maxTagValue is the length limit of a tag value.
	maxTagValue = 256
)

// Options configure New and NewReader.
type Options struct {
	// Region is the AWS region of the secrets (required), e.g. eu-west-1.
	Region string
	// Endpoint overrides the regional endpoint URL: a VPC interface
	// endpoint, or a test's fake. Empty: the SDK's regional endpoint.
	Endpoint string
	// Prefix is the name folder of the records, typically
	// custody.ClusterPrefix(prefix, cluster). Default DefaultPrefix.
	Prefix string
	// MaxVersions is how many versions of a record stay readable
	// (1..MaxVersionsLimit). Default DefaultMaxVersions. Store only.
	MaxVersions int
	// Timeout bounds each Store or Reader call, retries included.
	// Default DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one request (throttling, 5xx,
	// connection errors). Default DefaultMaxAttempts.
	MaxAttempts int
	// MaxBackoff bounds the wait between attempts. Default DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Credentials overrides the SDK's default credential chain (IRSA, EKS
	// Pod Identity, ...). Leave nil in production.
	Credentials aws.CredentialsProvider
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_+=.@-]+(/[A-Za-z0-9_+=.@-]+)*$`)

func (o *Options) defaults() error {
	if o.Region == "" {
		return errors.New("AWS Secrets Manager custody store needs a region (for example eu-west-1)")
	}
	if !regionRE.MatchString(o.Region) {
		return fmt.Errorf("AWS region %q is not a region name (for example eu-west-1)", o.Region)
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(o.Prefix) || len(o.Prefix) > MaxPrefixLength {
		return fmt.Errorf("custody prefix %q is not a Secrets Manager name prefix ([A-Za-z0-9/_+=.@-], at most %d characters, no empty segment)", o.Prefix, MaxPrefixLength)
	}
	if o.MaxVersions == 0 {
		o.MaxVersions = DefaultMaxVersions
	}
	if o.MaxVersions < 1 || o.MaxVersions > MaxVersionsLimit {
		return fmt.Errorf("custody max versions %d out of range 1..%d for AWS Secrets Manager", o.MaxVersions, MaxVersionsLimit)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	return nil
}

// newClient builds the Secrets Manager client: the SDK's default
// credential chain unless o.Credentials is set, the standard retryer
// bounded by o.MaxAttempts without the client-side retry quota (a burst of
// throttling answers should be retried per request, not fail every later
// request at once).
func newClient(ctx context.Context, o Options) (*secretsmanager.Client, error) {
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = o.MaxAttempts
			so.MaxBackoff = o.MaxBackoff
			so.RateLimiter = ratelimit.None
		})
	}
	load := []func(*config.LoadOptions) error{config.WithRegion(o.Region), config.WithRetryer(retryer)}
	if o.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(o.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return secretsmanager.NewFromConfig(cfg, func(so *secretsmanager.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
	}), nil
}

// Store is a custody.Store and custody.Lister over AWS Secrets Manager. It
// never reads secret values: writing and List need the custody writer's
// policy, Metadata alone the guard's (DescribeSecret), see deploy/aws.
type Store struct {
	client *secretsmanager.Client
	opts   Options
}

var _ custody.Store = (*Store)(nil)

// New returns a Store. It makes no call: credentials and the endpoint are
// first used by the first Put or Metadata.
func New(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	c, err := newClient(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Store{client: c, opts: opts}, nil
}

// Path returns the secret name of the record: "<prefix>/<namespace>/<name>".
func (s *Store) Path(namespace, name string) string {
	return secretName(s.opts.Prefix, namespace, name)
}

// ParsePath is Path's inverse: the namespace and Secret name of a record's
// secret name under this store's prefix.
func (s *Store) ParsePath(path string) (namespace, name string, err error) {
	rest, ok := strings.CutPrefix(path, s.opts.Prefix+"/")
	if ok {
		namespace, name, ok = strings.Cut(rest, "/")
	}
	if !ok || validName(namespace, name) != nil {
		return "", "", fmt.Errorf("%q is not a custody record name under %q", path, s.opts.Prefix)
	}
	return namespace, name, nil
}

func secretName(prefix, namespace, name string) string {
	return prefix + "/" + namespace + "/" + name
}

// validName accepts what Kubernetes accepts: a DNS-1123 label namespace and
// a DNS-1123 subdomain name.
func validName(namespace, name string) error {
	if len(validation.IsDNS1123Label(namespace)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return fmt.Errorf("invalid secret reference %q/%q (a namespace is a DNS-1123 label, a Secret name a DNS-1123 subdomain)", namespace, name)
	}
	return nil
}

// versionPrefix starts every version id Keyward writes.
const versionPrefix = "keyward-v"

// VersionID is the VersionId (ClientRequestToken) of version n of a record:
// 32 characters, the minimum Secrets Manager takes.
func VersionID(n int) string { return fmt.Sprintf("%s%023d", versionPrefix, n) }

// VersionLabel is the staging label that pins version n and finds it for Read.
func VersionLabel(n int) string { return "v" + strconv.Itoa(n) }

// parseVersionID is VersionID's inverse; ok is false for versions Keyward
// did not write.
func parseVersionID(id string) (int, bool) {
	digits, ok := strings.CutPrefix(id, versionPrefix)
	if !ok || len(digits) != 23 {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n > 0
}

// parseVersionLabel is VersionLabel's inverse.
func parseVersionLabel(label string) (int, bool) {
	digits, ok := strings.CutPrefix(label, "v")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n > 0 && VersionLabel(n) == label
}
