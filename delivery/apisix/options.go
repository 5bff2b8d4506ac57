// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package apisix

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyward-io/keyward/delivery/internal/gateway"
)

// Modes of delivery.
const (
	// ModeInline PUTs the PEM key in the SSL object. APISIX keeps the object
	// where its Admin API keeps everything: in etcd (traditional and
	// decoupled deployments). See the package documentation.
	ModeInline = "inline"
	// ModeStandalone puts the PEM key in the SSL object of an APISIX in
	// API-driven standalone mode, which keeps its configuration in memory
	// only: the sink reads the whole configuration, replaces or adds its SSL
	// object and writes it back (/apisix/admin/configs, see standalone.go).
	// An APISIX restart loses it; the agent re-delivers through Resync.
	ModeStandalone = "standalone"
	// ModeSecretRef mirrors each version to a KV v1 mount of Vault and PUTs
	// an SSL object that only references it ($secret://vault/...).
	ModeSecretRef = "secret-ref"
)

// Defaults for the flags.
const (
	DefaultSSLIDPrefix      = "keyward_"
	DefaultTimeout          = 10 * time.Second
	DefaultSecretManagerID  = "keyward"
	DefaultTokenTTL         = 24 * time.Hour
	DefaultTokenPolicy      = "keyward-apisix-mirror-read"
	DefaultTokenRevokeDelay = 30 * time.Second
)

// maxIDLength and idPattern are APISIX's rule for resource ids
// (apisix/schema_def.lua, id_schema): 1 to 64 of [a-zA-Z0-9-_.].
const maxIDLength = 64

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// maxPrefixLength leaves room in an id for the hash suffix and some of the
// Secret's name, so that ids stay readable.
const maxPrefixLength = 24

// Options configure the APISIX sink. Flags set them (AddFlags); New checks them.
type Options struct {
	// AdminURL is APISIX's Admin API base URL, e.g. http://apisix-admin:9180.
	AdminURL string
	// AdminKeyFile holds the Admin API key (sent as X-API-KEY). It is read by
	// New and read again after a 401 or 403, so the key can be rotated
	// without restarting the agent.
	AdminKeyFile string
	// Mode is ModeInline, ModeStandalone or ModeSecretRef.
	Mode string
	// SSLIDPrefix starts the id of every SSL object the sink writes.
	SSLIDPrefix string
	// Timeout bounds every call to APISIX and to Vault.
	Timeout time.Duration

	// The rest is for ModeSecretRef only.

	// SecretManagerID is the id of APISIX's secrets/vault/<id> object.
	SecretManagerID string
	// MirrorMount is the KV v1 mount the sink mirrors versions to.
	MirrorMount string
	// VaultURL is Vault's address as APISIX reaches it (it may differ from
	// the agent's).
	VaultURL string
	// TokenTTL is the lifetime of the Vault token given to APISIX. The sink
	// replaces the token once half of it has passed.
	TokenTTL time.Duration
	// TokenPolicy names the Vault policy of that token: read on
	// <MirrorMount>/* and nothing else (see MirrorReadPolicy).
	TokenPolicy string
	// TokenRole, if set, is the Vault token role the token is created with
	// (auth/token/create/<role>; the role should be orphan with
	// allowed_policies = TokenPolicy). Empty: auth/token/create-orphan,
	// which needs no sudo: the agent's policy grants update on it, limited
	// to policies = TokenPolicy (deploy/vault/keyward-agent-apisix-mirror.hcl).
	TokenRole string
	// TokenRevokeDelay is how long a replaced token stays valid, so that
	// APISIX workers that have not yet seen the new secret manager object
	// do not fail (and cache the failure of) a secret fetch.
	TokenRevokeDelay time.Duration
}

// AddFlags registers the --apisix-* flags on fs, with defaults.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.AdminURL, "apisix-admin-url", o.AdminURL, "APISIX Admin API base URL, e.g. http://apisix-admin:9180")
	fs.StringVar(&o.AdminKeyFile, "apisix-admin-key-file", o.AdminKeyFile, "file holding the APISIX Admin API key (X-API-KEY); re-read after a 401/403 so it can rotate")
	fs.StringVar(&o.Mode, "apisix-mode", gateway.Or(o.Mode, ModeInline), "inline (key in the SSL object, kept in APISIX's etcd), standalone (key in the SSL object of an APISIX in API-driven standalone mode, kept in its memory only; whole configuration read and written back through /apisix/admin/configs) or secret-ref (key mirrored to a Vault KV v1 mount, SSL object holds $secret:// references)")
	fs.StringVar(&o.SSLIDPrefix, "apisix-ssl-id-prefix", gateway.Or(o.SSLIDPrefix, DefaultSSLIDPrefix), "prefix of the ids of the SSL objects the sink owns")
	fs.DurationVar(&o.Timeout, "apisix-timeout", gateway.OrDuration(o.Timeout, DefaultTimeout), "timeout of every call to APISIX and to Vault")
	fs.StringVar(&o.SecretManagerID, "apisix-secret-manager-id", gateway.Or(o.SecretManagerID, DefaultSecretManagerID), "secret-ref: id of APISIX's secrets/vault/<id> object the sink manages")
	fs.StringVar(&o.MirrorMount, "apisix-mirror-mount", o.MirrorMount, "secret-ref: Vault KV v1 mount the sink mirrors each version to")
	fs.StringVar(&o.VaultURL, "apisix-vault-url", o.VaultURL, "secret-ref: Vault address as APISIX reaches it")
	fs.DurationVar(&o.TokenTTL, "apisix-token-ttl", gateway.OrDuration(o.TokenTTL, DefaultTokenTTL), "secret-ref: TTL of the Vault token given to APISIX; replaced after half of it")
	fs.StringVar(&o.TokenPolicy, "apisix-token-policy", gateway.Or(o.TokenPolicy, DefaultTokenPolicy), "secret-ref: Vault policy of APISIX's token (read-only on the mirror mount)")
	fs.StringVar(&o.TokenRole, "apisix-token-role", o.TokenRole, "secret-ref: Vault token role to create APISIX's token with (orphan, allowed_policies = the token policy); empty uses auth/token/create-orphan (no sudo needed; the agent's policy must allow it for the token policy)")
	fs.DurationVar(&o.TokenRevokeDelay, "apisix-token-revoke-delay", gateway.OrDuration(o.TokenRevokeDelay, DefaultTokenRevokeDelay), "secret-ref: how long a replaced Vault token stays valid before the sink revokes it")
}

// complete fills in defaults for options set without AddFlags.
func (o *Options) complete() {
	o.Mode = gateway.Or(o.Mode, ModeInline)
	o.SSLIDPrefix = gateway.Or(o.SSLIDPrefix, DefaultSSLIDPrefix)
	o.Timeout = gateway.OrDuration(o.Timeout, DefaultTimeout)
	o.SecretManagerID = gateway.Or(o.SecretManagerID, DefaultSecretManagerID)
	o.TokenTTL = gateway.OrDuration(o.TokenTTL, DefaultTokenTTL)
	o.TokenPolicy = gateway.Or(o.TokenPolicy, DefaultTokenPolicy)
	o.MirrorMount = strings.Trim(o.MirrorMount, "/")
	o.AdminURL = strings.TrimSuffix(o.AdminURL, "/")
	o.VaultURL = strings.TrimSuffix(o.VaultURL, "/")
}

// validate checks completed options; deps says whether a Vault client was given.
func (o *Options) validate(haveVault bool) error {
	var errs []error
	if o.AdminURL == "" {
		errs = append(errs, errors.New("--apisix-admin-url is required"))
	} else if u, err := url.Parse(o.AdminURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--apisix-admin-url %q is not an http(s) URL", o.AdminURL))
	}
	if o.AdminKeyFile == "" {
		errs = append(errs, errors.New("--apisix-admin-key-file is required (APISIX refuses Admin API calls without X-API-KEY)"))
	}
	if len(o.SSLIDPrefix) > maxPrefixLength || !idPattern.MatchString(o.SSLIDPrefix) {
		errs = append(errs, fmt.Errorf("--apisix-ssl-id-prefix %q must be 1 to %d of [a-zA-Z0-9._-] (APISIX's id charset)", o.SSLIDPrefix, maxPrefixLength))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("--apisix-timeout %s must be positive", o.Timeout))
	}
	switch o.Mode {
	case ModeInline, ModeStandalone:
	case ModeSecretRef:
		if !haveVault {
			errs = append(errs, errors.New("--apisix-mode=secret-ref needs a Vault client (Deps.Vault)"))
		}
		if len(o.SecretManagerID) > maxIDLength || !idPattern.MatchString(o.SecretManagerID) {
			errs = append(errs, fmt.Errorf("--apisix-secret-manager-id %q must be 1 to %d of [a-zA-Z0-9._-]", o.SecretManagerID, maxIDLength))
		}
		if o.MirrorMount == "" {
			errs = append(errs, errors.New("--apisix-mirror-mount is required with --apisix-mode=secret-ref (a KV v1 mount)"))
		}
		if o.VaultURL == "" {
			errs = append(errs, errors.New("--apisix-vault-url is required with --apisix-mode=secret-ref (Vault's address as APISIX reaches it)"))
		} else if u, err := url.Parse(o.VaultURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			// APISIX appends /v1/<prefix>/... to it.
			errs = append(errs, fmt.Errorf("--apisix-vault-url %q must be an http(s) URL without a path", o.VaultURL))
		}
		if o.TokenTTL < 2*time.Minute {
			errs = append(errs, fmt.Errorf("--apisix-token-ttl %s is too short (at least 2m; the token is replaced at half of it)", o.TokenTTL))
		}
		if o.TokenPolicy == "" {
			errs = append(errs, errors.New("--apisix-token-policy is required with --apisix-mode=secret-ref"))
		}
		if o.TokenRevokeDelay < 0 || o.TokenRevokeDelay >= o.TokenTTL/2 {
			errs = append(errs, fmt.Errorf("--apisix-token-revoke-delay %s must be at least 0 and less than half of --apisix-token-ttl", o.TokenRevokeDelay))
		}
	default:
		errs = append(errs, fmt.Errorf("--apisix-mode %q: want %s, %s or %s", o.Mode, ModeInline, ModeStandalone, ModeSecretRef))
	}
	return errors.Join(errs...)
}
