// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

// Package webhook holds Keyward's admission handlers and their
// MutatingWebhookConfiguration. Handlers decode, look up what the decision
// needs, call it and encode the answer; the decisions themselves live in
// packages scrubber (what to move) and guard (the custody guard).
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/keyward-io/keyward/custody"
	"github.com/keyward-io/keyward/scrubber"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// SecretScrubPath is where the secret scrub handler is served.
const SecretScrubPath = "/mutate-v1-secret"

// SecretScrubber is the admission handler that moves a cert-manager Secret's
// private key to custody before the Secret is persisted.
//
// Contract:
//   - in-scope CREATE/UPDATE holding key material: the key is written to the
//     custody store first; only when the store confirmed the write is the
//     request allowed, with a JSON patch that turns the Secret into a
//     placeholder. Any failure denies the request (fail closed): nothing is
//     persisted and cert-manager retries.
//   - dry-run: the plan is computed (so invalid input is still denied, as a
//     real request would be) but nothing is written and the request is
//     allowed unmodified, with a warning saying so. A dry-run patch would have
//     to invent a custody version that does not exist.
//   - already-scrubbed placeholders and out-of-scope objects: allowed untouched.
//   - a Certificate's Secret pre-created as Opaque and now holding a key:
//     denied (scrubber.ErrOpaqueTarget), with the rejection event.
//   - with WithSDS, a placeholder being created for an Envoy Gateway listener
//     of a class marked for SDS becomes an SDS reference (custody.MarkSDS).
//
// Namespace scope comes from the webhook's namespaceSelector; strict mode
// from a StrictMode (a cache read, never an API call per request).
type SecretScrubber struct {
	scrubber *scrubber.Scrubber
	strict   scrubber.StrictMode
	// certs and recorder, when set, report denials on the Certificate.
	certs    client.Reader
	recorder events.EventRecorder
	// sds, when set, says which Secrets are created as SDS references.
	sds SDSResolver
}

// SDSResolver names the SDS address a custody Secret being created must
// point at ("" for none): listeners.SDSResolver. It must read only a cache.
type SDSResolver interface {
	URL(ctx context.Context, namespace, name string) (string, error)
}

// WithSDS makes the handler create the custody Secrets that r names as Envoy
// Gateway SDS references (custody.MarkSDS): type gateway.envoyproxy.io/sds,
// pointing at `keyward sds`. Only a CREATE can choose the type (it is
// immutable), and cert-manager keeps it on every later write. When r cannot
// answer within sdsLookupTimeout the Secret is created as kubernetes.io/tls
// and listeners.Checker reports the listener.
func (h *SecretScrubber) WithSDS(r SDSResolver) *SecretScrubber {
	h.sds = r
	return h
}

// sdsLookupTimeout bounds the cache lookup of the Secret's Gateways.
const sdsLookupTimeout = 100 * time.Millisecond

// markSDS turns the placeholder being created into an SDS reference when
// its Gateways ask for one.
func (h *SecretScrubber) markSDS(ctx context.Context, req admission.Request, placeholder *corev1.Secret) {
	if h.sds == nil || req.Operation != admissionv1.Create || placeholder.Type != corev1.SecretTypeTLS {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, sdsLookupTimeout)
	defer cancel()
	url, err := h.sds.URL(ctx, placeholder.Namespace, placeholder.Name)
	if err != nil {
		logf.FromContext(ctx).Info("secret created as kubernetes.io/tls: its gateways could not be looked up", "error", err.Error())
		return
	}
	if url != "" {
		custody.MarkSDS(placeholder, url)
		logf.FromContext(ctx).V(1).Info("secret created as an SDS reference", "url", url)
	}
}

// WithRejectionEvents makes the handler record a Warning event
// (scrubber.ReasonCustodyRejected) on the Certificate named by a denied
// Secret's cert-manager.io/certificate-name annotation, so that `kubectl
// describe certificate` says why issuance does not complete. certs must be
// a cache reader with a started Certificate informer: the lookup happens on
// the admission path (denials only) and never calls the API.
func (h *SecretScrubber) WithRejectionEvents(certs client.Reader, recorder events.EventRecorder) *SecretScrubber {
	h.certs, h.recorder = certs, recorder
	return h
}

// rejectionEventTimeout bounds the cache lookup of the Certificate.
const rejectionEventTimeout = 100 * time.Millisecond

// reportRejection records why the Secret of a Certificate was refused.
func (h *SecretScrubber) reportRejection(ctx context.Context, sec *corev1.Secret, reason error) {
	name := sec.Annotations[scrubber.AnnotationCertificateName]
	if h.recorder == nil || h.certs == nil || name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, rejectionEventTimeout)
	defer cancel()
	var crt cmapi.Certificate
	if err := h.certs.Get(ctx, client.ObjectKey{Namespace: sec.Namespace, Name: name}, &crt); err != nil {
		logf.FromContext(ctx).V(1).Info("no event for the denied secret: certificate not found in the cache", "certificate", name, "error", err.Error())
		return
	}
	h.recorder.Eventf(&crt, nil, corev1.EventTypeWarning, scrubber.ReasonCustodyRejected, "Scrub",
		"Secret %s was not admitted and its key was not moved to custody: %v", sec.Name, reason)
}

var _ admission.Handler = (*SecretScrubber)(nil)

// NewSecretScrubber returns the handler. Register it with
// mgr.GetWebhookServer().Register(SecretScrubPath, &webhook.Admission{Handler: h}).
func NewSecretScrubber(s *scrubber.Scrubber, strict scrubber.StrictMode) (*SecretScrubber, error) {
	if s == nil {
		return nil, errors.New("secret scrub webhook needs a scrubber")
	}
	if strict == nil {
		strict = scrubber.FixedStrictMode(false)
	}
	return &SecretScrubber{scrubber: s, strict: strict}, nil
}

// Handle implements admission.Handler.
func (h *SecretScrubber) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Kind.Group != "" || req.Kind.Kind != "Secret" {
		return admission.Allowed("not a Secret")
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("operation not scrubbed")
	}
	var sec corev1.Secret
	if err := json.Unmarshal(req.Object.Raw, &sec); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding secret %s/%s: %w", req.Namespace, req.Name, err))
	}
	if sec.Namespace == "" {
		sec.Namespace = req.Namespace
	}
	if !scrubber.InScope(&sec) && !scrubber.OpaqueTarget(&sec) {
		return admission.Allowed("not a cert-manager TLS secret")
	}
	ref := sec.Namespace + "/" + sec.Name
	log := logf.FromContext(ctx).WithValues("secret", ref, "operation", req.Operation)
	ctx = logf.IntoContext(ctx, log)

	strict, err := h.strict.Strict(ctx, sec.Namespace)
	if err != nil {
		return admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("keyward: secret %s not admitted, key not moved to custody: %w", ref, err))
	}
	dryRun := req.DryRun != nil && *req.DryRun
	sr := scrubber.ScrubRequest{Secret: &sec, Strict: strict, By: scrubber.ByWebhook, DryRun: dryRun}
	sr.ExpectedVersion, sr.ExpectedKeySHA256, sr.ExpectedSerial = expectedCustodyRecord(req)
	out, err := h.scrubber.Scrub(ctx, sr)
	if err != nil {
		log.Info("denying secret write", "result", out.Result, "error", err.Error())
		if !dryRun && out.Result != scrubber.ResultConflict {
			h.reportRejection(ctx, &sec, err)
		}
		switch out.Result {
		case scrubber.ResultInvalid:
			return admission.Denied(fmt.Sprintf("keyward: secret %s not admitted: %v", ref, err))
		case scrubber.ResultConflict:
			return admission.Errored(http.StatusConflict, fmt.Errorf("keyward: secret %s not admitted, custody record changed concurrently, retry: %w", ref, err))
		default:
			return admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("keyward: secret %s not admitted, key could not be moved to custody (fail closed): %w", ref, err))
		}
	}
	switch {
	case out.Result == scrubber.ResultDryRun:
		return admission.Allowed("dry run").WithWarnings(fmt.Sprintf(
			"keyward: dry run: the private key of secret %s would be moved to custody at %s; nothing was written", ref, out.Plan.Annotations[custody.AnnotationPath]))
	case out.Secret == nil:
		return admission.Allowed(out.Plan.Reason)
	}
	h.markSDS(ctx, req, out.Secret)
	resp := admission.Patched("", placeholderPatch(&sec, out.Secret)...)
	if out.Result == scrubber.ResultScrubbed {
		log.V(1).Info("secret admitted as placeholder", "version", out.Version)
	}
	return resp
}

// placeholderPatch is the JSON patch that turns orig, the Secret as
// submitted, into placeholder: only what a placeholder changes (data keys,
// annotations, labels, type), written member by member. It is built from the
// two typed objects rather than by diffing their encodings, which would cost
// two more JSON decodes of the whole Secret on the admission path.
func placeholderPatch(orig, placeholder *corev1.Secret) []jsonpatch.Operation {
	var ops []jsonpatch.Operation
	if orig.Type != placeholder.Type {
		ops = append(ops, jsonpatch.NewOperation("add", "/type", placeholder.Type))
	}
	same := func(a, b string) bool { return a == b }
	ops = append(ops, memberPatch("/data", orig.Data, placeholder.Data, bytes.Equal)...)
	ops = append(ops, memberPatch("/metadata/annotations", orig.Annotations, placeholder.Annotations, same)...)
	return append(ops, memberPatch("/metadata/labels", orig.Labels, placeholder.Labels, same)...)
}

// memberPatch patches the JSON object at path from was to want: the whole
// object when it was absent or empty, else one add (which replaces an existing
// member) per new or changed member and one remove per member gone, in key
// order so the answer is deterministic.
func memberPatch[V any](path string, was, want map[string]V, equal func(a, b V) bool) []jsonpatch.Operation {
	if len(want) == 0 && len(was) == 0 {
		return nil
	}
	if len(was) == 0 {
		// Absent or empty: add replaces an existing member, so this is right
		// whichever the submitted encoding had.
		return []jsonpatch.Operation{jsonpatch.NewOperation("add", path, want)}
	}
	var ops []jsonpatch.Operation
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if old, ok := was[k]; !ok || !equal(old, want[k]) {
			ops = append(ops, jsonpatch.NewOperation("add", path+"/"+escapePointer(k), want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(was)) {
		if _, ok := want[k]; !ok {
			ops = append(ops, jsonpatch.NewOperation("remove", path+"/"+escapePointer(k), nil))
		}
	}
	return ops
}

// escapePointer escapes a key for a JSON pointer (RFC 6901).
func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// expectedCustodyRecord describes the custody record this write most likely
// replaces: none (version 0) for a create; for an update of a placeholder,
// the version, key fingerprint and serial its annotations name. A nil
// version means unknown. It only saves Vault round trips; a wrong guess
// costs the metadata read it would have saved.
func expectedCustodyRecord(req admission.Request) (version *int, keySHA256, serial string) {
	if req.Operation == admissionv1.Create {
		return ptr.To(0), "", ""
	}
	if len(req.OldObject.Raw) == 0 {
		return nil, "", ""
	}
	// Only the markers are decoded: the old object's managedFields and data
	// are not worth decoding on the admission path.
	var old struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(req.OldObject.Raw, &old); err != nil {
		return nil, "", ""
	}
	return scrubber.ExpectedRecord(&metav1.ObjectMeta{Labels: old.Metadata.Labels, Annotations: old.Metadata.Annotations})
}
