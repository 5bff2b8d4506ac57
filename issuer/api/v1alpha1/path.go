// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"fmt"
	"regexp"
	"strings"
)

// pathSegment is what Vault accepts in mount, issuer and role names here.
var pathSegment = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// SignPath is a parsed VaultIssuerSpec.Path.
type SignPath struct {
	// Mount is the PKI secrets engine mount, possibly nested ("team/pki").
	Mount string
	// IssuerRef is the PKI issuer named in the path, empty for the default issuer.
	IssuerRef string
	// Role is the PKI role that signs.
	Role string
}

// String returns the path in the form Vault's API takes after /v1/.
func (p SignPath) String() string {
	if p.IssuerRef != "" {
		return p.Mount + "/issuer/" + p.IssuerRef + "/sign/" + p.Role
	}
	return p.Mount + "/sign/" + p.Role
}

// ParseSignPath checks that path is `<mount>/sign/<role>` or
// `<mount>/issuer/<ref>/sign/<role>` (a leading "/v1/" or "/" is tolerated)
// and returns its parts. It accepts every path the CRD's pattern accepts.
func ParseSignPath(path string) (SignPath, error) {
	p := strings.TrimPrefix(strings.TrimPrefix(path, "/"), "v1/")
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if !pathSegment.MatchString(s) {
			return SignPath{}, fmt.Errorf("invalid Vault sign path %q: segment %q is empty or has characters other than letters, digits, '_', '.' and '-'", path, s)
		}
	}
	n := len(segs)
	if n < 3 || segs[n-2] != "sign" {
		return SignPath{}, fmt.Errorf("invalid Vault sign path %q: want <mount>/sign/<role> or <mount>/issuer/<ref>/sign/<role>", path)
	}
	out := SignPath{Role: segs[n-1]}
	mount := segs[:n-2]
	if len(mount) >= 3 && mount[len(mount)-2] == "issuer" {
		out.IssuerRef = mount[len(mount)-1]
		mount = mount[:len(mount)-2]
	}
	out.Mount = strings.Join(mount, "/")
	return out, nil
}
