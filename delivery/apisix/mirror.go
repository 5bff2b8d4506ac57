// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package apisix

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyward-io/keyward/delivery"
	"github.com/keyward-io/keyward/internal/vault"
)

// APISIX's Vault secret manager (apisix/secret/vault.lua) reads
// GET <uri>/v1/<prefix>/<path> with X-Vault-Token and returns
// .data[<field>], where a reference $secret://vault/<id>/<path>/<field>
// is split at its last "/". That response shape is KV v1's; with KV v2 the
// fields sit one level deeper, under data.data. Hence the KV v1 mirror.

// MirrorReadPolicy is the Vault policy APISIX's token needs (install it as
// Options.TokenPolicy): read on the mirror, nothing else.
func MirrorReadPolicy(mount string) string {
	return fmt.Sprintf("path %q {\n  capabilities = [\"read\"]\n}\n", strings.Trim(mount, "/")+"/*")
}

// mirrorDir is where the versions of b's Secret live, relative to the mount.
func mirrorDir(b *delivery.Bundle) string { return b.Namespace + "/" + b.Name }

// mirrorEntry names b's version in its mirror dir: v<version>, followed by
// -<12 hex digits of the key's SHA-256> when known. The fingerprint keeps
// the reference new (and so out of APISIX's cache) even when custody
// versions restart at 1 after a custody mount is rebuilt.
func mirrorEntry(b *delivery.Bundle) string {
	e := "v" + strconv.Itoa(b.Version)
	if len(b.KeySHA256) >= 12 {
		e += "-" + b.KeySHA256[:12]
	}
	return e
}

// entryVersion parses a mirror entry name back to its version.
func entryVersion(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "v")
	if !ok {
		return 0, false
	}
	rest, _, _ = strings.Cut(rest, "-")
	v, err := strconv.Atoi(rest)
	return v, err == nil
}

// secretRef is the reference to b's mirror entry, without the field.
func (s *Sink) secretRef(b *delivery.Bundle) string {
	return fmt.Sprintf("$secret://vault/%s/%s/%s", s.o.SecretManagerID, mirrorDir(b), mirrorEntry(b))
}

func (s *Sink) writeMirror(ctx context.Context, b *delivery.Bundle) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	p := s.o.MirrorMount + "/" + mirrorDir(b) + "/" + mirrorEntry(b)
	if _, err := s.vault.Logical().WriteWithContext(ctx, p, map[string]any{
		"cert": string(b.Certificate),
		"key":  string(b.Key),
	}); err != nil {
		return fmt.Errorf("writing Vault mirror %s: %w", p, vault.MapError(err))
	}
	return nil
}

// cleanMirrorLocked deletes, for every Secret delivered since the last
// successful clean-up, the mirror entries other than the one served and
// the newest one of an older version (which handshakes that started before
// the PUT may still fetch). Failures are logged and retried by the next
// Deliver or Run tick: the SSL object is already right.
func (s *Sink) cleanMirrorLocked(ctx context.Context) {
	for dir, current := range s.cleanup {
		if err := s.cleanOne(ctx, dir, current); err != nil {
			logf.FromContext(ctx).Error(err, "cleaning the APISIX mirror; will retry", "secret", dir)
			continue
		}
		delete(s.cleanup, dir)
	}
}

func (s *Sink) cleanOne(ctx context.Context, dir, current string) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	list, err := s.vault.Logical().ListWithContext(ctx, s.o.MirrorMount+"/"+dir)
	if err != nil {
		return fmt.Errorf("listing Vault mirror %s/%s: %w", s.o.MirrorMount, dir, vault.MapError(err))
	}
	if list == nil {
		return nil
	}
	curVersion, _ := entryVersion(current)
	keys, _ := list.Data["keys"].([]any)
	var entries []string
	previous, previousVersion := "", 0
	for _, k := range keys {
		name, _ := k.(string)
		v, ok := entryVersion(name)
		if !ok || name == current {
			continue
		}
		entries = append(entries, name)
		if v < curVersion && v > previousVersion {
			previous, previousVersion = name, v
		}
	}
	sort.Strings(entries)
	for _, e := range entries {
		if e == previous {
			continue
		}
		p := s.o.MirrorMount + "/" + dir + "/" + e
		if _, err := s.vault.Logical().DeleteWithContext(ctx, p); err != nil {
			return fmt.Errorf("deleting Vault mirror %s: %w", p, vault.MapError(err))
		}
	}
	return nil
}

// vaultToken is APISIX's current token. The value goes to APISIX only.
type vaultToken struct {
	value    string
	accessor string
	issued   time.Time
	ttl      time.Duration
}

// due says whether the token is past half of its TTL.
func (t *vaultToken) due(now time.Time) bool { return !now.Before(t.issued.Add(t.ttl / 2)) }

// retiringToken was replaced at replaced; it is revoked TokenRevokeDelay later.
type retiringToken struct {
	tok      vaultToken
	replaced time.Time
}

// Maintain does, in secret-ref mode, what is due: replace APISIX's Vault
// token when it is past half of its TTL (or missing, or a Resync asked for
// it), revoke replaced tokens once TokenRevokeDelay has passed, and retry
// mirror clean-ups that failed. Deliver calls it; Run calls it on a timer.
func (s *Sink) Maintain(ctx context.Context) error {
	if s.o.Mode != ModeSecretRef {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.maintainLocked(ctx)
	s.cleanMirrorLocked(ctx)
	return err
}

// Run calls Maintain every minute (or every tenth of the token TTL if
// shorter) until ctx ends, so the token is replaced even when no
// certificate rotates. It returns at once in inline mode.
func (s *Sink) Run(ctx context.Context) error {
	if s.o.Mode != ModeSecretRef {
		return nil
	}
	period := min(time.Minute, s.o.TokenTTL/10)
	t := s.clock.NewTicker(period)
	defer t.Stop()
	for {
		if err := s.Maintain(ctx); err != nil {
			logf.FromContext(ctx).Error(err, "maintaining APISIX's Vault token; will retry", "period", period)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

func (s *Sink) maintainLocked(ctx context.Context) error {
	now := s.clock.Now()
	var rotateErr error
	if s.token == nil || s.token.due(now) || s.managerStale {
		rotateErr = s.rotateLocked(ctx, now)
	}
	return errors.Join(rotateErr, s.revokeRetiredLocked(ctx, now))
}

// tokenUsable says whether APISIX holds a token that has not expired, so
// that a failed replacement need not hold up a delivery.
func (s *Sink) tokenUsable() bool {
	return s.token != nil && !s.managerStale && s.clock.Now().Before(s.token.issued.Add(s.token.ttl))
}

// rotateLocked creates a token, gives it to APISIX, and only then retires
// the previous one. A token created but refused by APISIX is revoked at once.
func (s *Sink) rotateLocked(ctx context.Context, now time.Time) error {
	if s.token != nil && !s.token.due(now) {
		// Only the manager object is stale: send the current token again.
		if err := s.putManager(ctx, s.token.value); err != nil {
			return err
		}
		s.managerStale = false
		return nil
	}
	tok, err := s.createToken(ctx, now)
	if err != nil {
		return err
	}
	if err := s.putManager(ctx, tok.value); err != nil {
		if rerr := s.revoke(ctx, tok); rerr != nil {
			logf.FromContext(ctx).Error(rerr, "revoking a Vault token APISIX did not take; it expires with its TTL", "accessor", tok.accessor)
		}
		return err
	}
	if s.token != nil {
		s.retiring = append(s.retiring, retiringToken{tok: *s.token, replaced: now})
	}
	s.token, s.managerStale = &tok, false
	logf.FromContext(ctx).V(1).Info("gave APISIX a new Vault token", "accessor", tok.accessor, "ttl", tok.ttl)
	return nil
}

func (s *Sink) createToken(ctx context.Context, now time.Time) (vaultToken, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	renewable := false
	req := &vaultapi.TokenCreateRequest{
		Policies: []string{s.o.TokenPolicy},
		// Fixed lifetime: APISIX never renews its token; the sink replaces it.
		TTL:            s.o.TokenTTL.String(),
		ExplicitMaxTTL: s.o.TokenTTL.String(),
		Renewable:      &renewable,
		DisplayName:    "keyward-apisix-" + s.o.SecretManagerID,
	}
	var sec *vaultapi.Secret
	var err error
	where := "auth/token/create-orphan"
	// Orphan: the agent's own token (a short-lived login) must not take
	// APISIX's token with it when it expires.
	if s.o.TokenRole != "" {
		where = "auth/token/create/" + s.o.TokenRole
		sec, err = s.vault.Auth().Token().CreateWithRoleWithContext(ctx, req, s.o.TokenRole)
	} else {
		sec, err = s.vault.Auth().Token().CreateOrphanWithContext(ctx, req)
	}
	if err != nil {
		return vaultToken{}, fmt.Errorf("creating APISIX's Vault token at %s: %w", where, vault.MapError(err))
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return vaultToken{}, fmt.Errorf("creating APISIX's Vault token at %s: Vault returned no token", where)
	}
	// Vault may cap the TTL (role or mount maximum): plan with what it gave.
	ttl := time.Duration(sec.Auth.LeaseDuration) * time.Second
	if ttl <= 0 || ttl > s.o.TokenTTL {
		ttl = s.o.TokenTTL
	}
	return vaultToken{value: sec.Auth.ClientToken, accessor: sec.Auth.Accessor, issued: now, ttl: ttl}, nil
}

// secretManager is the body of PUT /apisix/admin/secrets/vault/{id}.
type secretManager struct {
	URI    string `json:"uri"`
	Prefix string `json:"prefix"`
	Token  string `json:"token"`
}

func (s *Sink) putManager(ctx context.Context, token string) error {
	return s.put(ctx, "/apisix/admin/secrets/vault/"+s.o.SecretManagerID,
		secretManager{URI: s.o.VaultURL, Prefix: s.o.MirrorMount, Token: token}, []byte(token))
}

func (s *Sink) revokeRetiredLocked(ctx context.Context, now time.Time) error {
	var errs []error
	keep := s.retiring[:0]
	for _, r := range s.retiring {
		if now.Sub(r.replaced) < s.o.TokenRevokeDelay {
			keep = append(keep, r)
			continue
		}
		if err := s.revoke(ctx, r.tok); err != nil {
			errs = append(errs, err)
			keep = append(keep, r)
			continue
		}
		logf.FromContext(ctx).V(1).Info("revoked APISIX's previous Vault token", "accessor", r.tok.accessor)
	}
	s.retiring = keep
	return errors.Join(errs...)
}

// revoke revokes tok with tok itself (auth/token/revoke-self, which
// Vault's default policy allows), so the agent needs no revoke rights over
// other tokens. A token Vault no longer knows (expired) counts as revoked.
func (s *Sink) revoke(ctx context.Context, tok vaultToken) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	c, err := s.vault.CloneWithHeaders()
	if err != nil {
		return fmt.Errorf("revoking APISIX's Vault token (accessor %s): %w", tok.accessor, err)
	}
	c.SetToken(tok.value)
	err = c.Auth().Token().RevokeSelfWithContext(ctx, "")
	if errors.Is(vault.MapError(err), vault.ErrForbidden) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("revoking APISIX's Vault token (accessor %s): %w", tok.accessor, vault.MapError(err))
	}
	return nil
}
