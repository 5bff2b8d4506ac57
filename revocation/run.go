// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package revocation

import (
	"context"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward-io/keyward/issuer/api/v1alpha1"
)

// maxSleep bounds the loop's sleep, so the overdue gauge stays fresh.
const maxSleep = 15 * time.Second

// offer schedules e if its issuer revokes, unless the serial is pending already.
func (c *Controller) offer(e Entry) {
	ctx := c.ctx
	iss := e.Issuer.Object()
	if err := c.client.Get(ctx, types.NamespacedName{Namespace: e.Issuer.Namespace, Name: e.Issuer.Name}, iss); err != nil {
		c.log.V(1).Info("not revoking: issuer unreadable", "issuer", e.Issuer.String(), "serial", e.Serial, "error", err.Error())
		return
	}
	e, ok := Schedule(e, iss.IssuerSpec().Revocation, c.opts.Clock.Now())
	if !ok {
		c.log.V(1).Info("not revoking: issuer does not revoke for this reason", "issuer", e.Issuer.String(), "serial", e.Serial, "reason", e.Reason)
		return
	}
	c.mu.Lock()
	_, dup := c.entries[e.Key()]
	if !dup {
		c.entries[e.Key()] = &e
		c.dirty = true
	}
	c.mu.Unlock()
	if dup {
		return
	}
	c.log.Info("revocation scheduled", "issuer", e.Issuer.String(), "serial", e.Serial, "reason", e.Reason,
		"secret", e.Namespace+"/"+e.Secret, "due", e.Due.UTC().Format(time.RFC3339))
	note := fmt.Sprintf("serial %s (%s) will be revoked by %s at %s", ColonSerial(e.Serial), describe(&e), e.Issuer, e.Due.UTC().Format(time.RFC3339))
	if crt := c.certificate(ctx, &e); crt != nil {
		c.recorder.Eventf(crt, nil, corev1.EventTypeNormal, EventScheduled, "Revoke", "%s", note)
	}
	c.kick()
}

func (c *Controller) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// describe says why a serial is being revoked, for events.
func describe(e *Entry) string {
	switch e.Reason {
	case ReasonSuperseded:
		return fmt.Sprintf("superseded by %s in Secret %s/%s", ColonSerial(e.SupersededBy), e.Namespace, e.Secret)
	case ReasonCertificateDeleted:
		return fmt.Sprintf("Certificate of Secret %s/%s deleted", e.Namespace, e.Secret)
	}
	return fmt.Sprintf("Secret %s/%s deleted", e.Namespace, e.Secret)
}

// loop persists, revokes what is due and sleeps until the next due time, a
// new entry, or maxSleep.
func (c *Controller) loop(ctx context.Context) {
	for {
		sleep := maxSleep
		if err := c.persist(ctx); err != nil {
			c.log.Error(err, "saving pending revocations; retrying")
			sleep = c.opts.RetryBase
		}
		if next, ok := c.runDue(ctx); ok {
			sleep = min(sleep, max(0, next.Sub(c.opts.Clock.Now())))
		}
		if err := c.persist(ctx); err != nil {
			c.log.Error(err, "saving pending revocations; retrying")
			sleep = min(sleep, c.opts.RetryBase)
		}
		c.observe()
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-c.opts.Clock.After(sleep):
		}
	}
}

// runDue attempts every entry that is ready, and returns when the next
// remaining one will be (ok false: none left).
func (c *Controller) runDue(ctx context.Context) (next time.Time, ok bool) {
	now := c.opts.Clock.Now()
	var due []*Entry
	c.mu.Lock()
	for _, e := range c.entries {
		if !e.ReadyAt().After(now) {
			due = append(due, e)
		}
	}
	c.mu.Unlock()
	for _, e := range due {
		if ctx.Err() != nil {
			break
		}
		c.attempt(ctx, e)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if t := e.ReadyAt(); !ok || t.Before(next) {
			next, ok = t, true
		}
	}
	return next, ok
}

// attempt revokes one entry and records the outcome.
func (c *Controller) attempt(ctx context.Context, e *Entry) {
	iss := e.Issuer.Object()
	err := c.client.Get(ctx, types.NamespacedName{Namespace: e.Issuer.Namespace, Name: e.Issuer.Name}, iss)
	var result string
	switch {
	case apierrors.IsNotFound(err):
		result, err, iss = ResultAbandoned, nil, nil
	case err != nil:
		result, err = ResultError, fmt.Errorf("reading issuer %s: %w", e.Issuer, err)
	case iss.IssuerSpec().Revocation == nil:
		result = ResultAbandoned
	default:
		actx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
		result, err = c.revoker.Revoke(actx, iss, e.Serial)
		cancel()
	}
	if ctx.Err() != nil && !Done(result) {
		return // stopping (leadership lost): not a failure of the serial
	}
	if !Done(result) && err == nil {
		err = fmt.Errorf("revocation of serial %s failed without a reason", e.Serial)
	}
	c.m.total.WithLabelValues(result).Inc()
	c.mu.Lock()
	if Done(result) {
		delete(c.entries, e.Key())
	} else {
		e.Attempts++
		e.NextAttempt = c.opts.Clock.Now().Add(Backoff(e.Attempts, c.opts.RetryBase, c.opts.RetryMax, c.opts.Jitter()))
		e.LastError = err.Error()
	}
	c.dirty = true
	snapshot := *e
	c.mu.Unlock()
	c.report(ctx, &snapshot, iss, result, err)
}

// report logs the outcome and records events on the issuer and, if it still
// exists, the Certificate.
func (c *Controller) report(ctx context.Context, e *Entry, iss v1alpha1.GenericIssuer, result string, err error) {
	serial := ColonSerial(e.Serial)
	typ, reason, note := corev1.EventTypeNormal, EventRevoked, ""
	switch result {
	case ResultRevoked, ResultExpired, ResultUnknown:
		note = fmt.Sprintf("serial %s (%s): %s in Vault", serial, describe(e), map[string]string{
			ResultRevoked: "revoked", ResultExpired: "already expired, not added to the CRL", ResultUnknown: "unknown to the PKI mount, nothing to revoke"}[result])
		c.log.Info("revocation done", "issuer", e.Issuer.String(), "serial", e.Serial, "result", result)
	case ResultAbandoned:
		typ, reason = corev1.EventTypeWarning, EventAbandoned
		note = fmt.Sprintf("serial %s (%s) not revoked: issuer %s is gone or no longer has spec.revocation", serial, describe(e), e.Issuer)
		c.log.Info("revocation abandoned", "issuer", e.Issuer.String(), "serial", e.Serial)
	case ResultRejected:
		typ, reason = corev1.EventTypeWarning, EventRejected
		note = fmt.Sprintf("serial %s (%s): Vault refused the revocation, not retried: %v", serial, describe(e), err)
		c.log.Error(err, "revocation rejected", "issuer", e.Issuer.String(), "serial", e.Serial)
	default:
		typ, reason = corev1.EventTypeWarning, EventFailed
		note = fmt.Sprintf("revoking serial %s (%s) failed (attempt %d, next at %s): %v", serial, describe(e), e.Attempts,
			e.NextAttempt.UTC().Format(time.RFC3339), err)
		c.log.Error(err, "revocation failed; will retry", "issuer", e.Issuer.String(), "serial", e.Serial, "attempts", e.Attempts)
	}
	if iss != nil {
		c.recorder.Eventf(iss, nil, typ, reason, "Revoke", "%s", note)
	}
	if crt := c.certificate(ctx, e); crt != nil {
		c.recorder.Eventf(crt, nil, typ, reason, "Revoke", "%s", note)
	}
}

// certificate returns the entry's Certificate if it still exists.
func (c *Controller) certificate(ctx context.Context, e *Entry) *cmapi.Certificate {
	if e.Certificate == "" {
		return nil
	}
	crt := &cmapi.Certificate{}
	if err := c.client.Get(ctx, types.NamespacedName{Namespace: e.Namespace, Name: e.Certificate}, crt); err != nil || crt.DeletionTimestamp != nil {
		return nil
	}
	return crt
}

// observe sets the gauges.
func (c *Controller) observe() {
	now := c.opts.Clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var overdue time.Duration
	for _, e := range c.entries {
		overdue = max(overdue, now.Sub(e.Due))
	}
	c.m.pending.Set(float64(len(c.entries)))
	c.m.overdue.Set(overdue.Seconds())
}

// persist writes the entries to the state ConfigMap when they changed. On a
// conflict (another replica wrote it while it led) the two sets are merged.
func (c *Controller) persist(ctx context.Context) error {
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	data, err := Encode(c.entries)
	rv := c.rv
	c.dirty = false
	c.mu.Unlock()
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.opts.Namespace, Name: c.opts.ConfigMapName, ResourceVersion: rv,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "keyward"}},
		Data: map[string]string{DataKey: data},
	}
	if rv == "" {
		err = c.client.Create(ctx, cm)
	} else {
		err = c.client.Update(ctx, cm)
	}
	if err != nil {
		c.mu.Lock()
		c.dirty = true
		c.mu.Unlock()
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			return c.merge(ctx, err)
		}
		return fmt.Errorf("writing configmap %s/%s: %w", c.opts.Namespace, c.opts.ConfigMapName, err)
	}
	c.mu.Lock()
	c.rv = cm.ResourceVersion
	c.mu.Unlock()
	return nil
}

// merge re-reads the ConfigMap after a conflict and adds what it holds that
// this replica does not; the next persist writes the union.
func (c *Controller) merge(ctx context.Context, cause error) error {
	var cur corev1.ConfigMap
	if err := c.api.Get(ctx, client.ObjectKey{Namespace: c.opts.Namespace, Name: c.opts.ConfigMapName}, &cur); err != nil {
		return fmt.Errorf("re-reading configmap %s/%s after %v: %w", c.opts.Namespace, c.opts.ConfigMapName, cause, err)
	}
	theirs, _ := Decode(cur.Data[DataKey])
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range theirs {
		if _, ok := c.entries[k]; !ok {
			c.entries[k] = e
		}
	}
	c.rv = cur.ResourceVersion
	return fmt.Errorf("configmap %s/%s changed underneath (merged; writing again): %w", c.opts.Namespace, c.opts.ConfigMapName, cause)
}
