// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package kong

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyward-io/keyward/delivery/internal/gateway"
)

// Modes of delivery, matching how Kong stores its configuration.
const (
	// ModeDB: Kong runs with a database (PostgreSQL); the sink upserts
	// certificates one by one. Kong's database then holds the key.
	ModeDB = "db"
	// ModeDBLess: Kong runs DB-less; the sink replaces Kong's declarative
	// configuration with a copy in which only its certificates changed.
	ModeDBLess = "dbless"
)

// Defaults for the flags.
const (
	DefaultTimeout = 10 * time.Second
	DefaultTag     = "keyward"
)

// Options configure the Kong sink. Flags set them (AddFlags); New checks them.
type Options struct {
	// AdminURL is Kong's Admin API base URL, e.g. http://kong-admin:8001.
	AdminURL string
	// AdminTokenFile, if set, holds a token sent as Kong-Admin-Token (Kong
	// Enterprise RBAC; Kong OSS's Admin API has no authentication of its
	// own). Read by New and again after a 401 or 403.
	AdminTokenFile string
	// Mode is ModeDB or ModeDBLess.
	Mode string
	// Timeout bounds every call to Kong.
	Timeout time.Duration
	// Tags are set on every certificate and SNI the sink writes.
	Tags []string
}

// AddFlags registers the --kong-* flags on fs, with defaults.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.AdminURL, "kong-admin-url", o.AdminURL, "Kong Admin API base URL, e.g. http://kong-admin:8001")
	fs.StringVar(&o.AdminTokenFile, "kong-admin-token-file", o.AdminTokenFile, "optional file holding a Kong-Admin-Token (Kong Enterprise RBAC); re-read after a 401/403")
	fs.StringVar(&o.Mode, "kong-mode", gateway.Or(o.Mode, ModeDBLess), "dbless (replace Kong's declarative config, key kept in Kong's memory and LMDB) or db (upsert certificates, key kept in Kong's database)")
	fs.DurationVar(&o.Timeout, "kong-timeout", gateway.OrDuration(o.Timeout, DefaultTimeout), "timeout of every call to Kong")
	if o.Tags == nil {
		o.Tags = []string{DefaultTag}
	}
	fs.StringSliceVar(&o.Tags, "kong-tags", o.Tags, "tags set on every certificate and SNI the sink writes")
}

func (o *Options) complete() {
	o.Mode = gateway.Or(o.Mode, ModeDBLess)
	o.Timeout = gateway.OrDuration(o.Timeout, DefaultTimeout)
	if o.Tags == nil {
		o.Tags = []string{DefaultTag}
	}
	o.AdminURL = strings.TrimSuffix(o.AdminURL, "/")
}

func (o *Options) validate() error {
	var errs []error
	if o.AdminURL == "" {
		errs = append(errs, errors.New("--kong-admin-url is required"))
	} else if u, err := url.Parse(o.AdminURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--kong-admin-url %q is not an http(s) URL", o.AdminURL))
	}
	if o.Mode != ModeDB && o.Mode != ModeDBLess {
		errs = append(errs, fmt.Errorf("--kong-mode %q: want %s or %s", o.Mode, ModeDBLess, ModeDB))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("--kong-timeout %s must be positive", o.Timeout))
	}
	for _, t := range o.Tags {
		// Kong rejects "," and "/" in tags (its tag filter syntax); the
		// sink also keeps to printable ASCII without spaces.
		if t == "" || strings.ContainsAny(t, ",/ ") || strings.IndexFunc(t, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
			errs = append(errs, fmt.Errorf("--kong-tags: %q is not a valid Kong tag (printable ASCII, no space, comma or slash)", t))
		}
	}
	return errors.Join(errs...)
}
