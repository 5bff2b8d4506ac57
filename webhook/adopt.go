// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/keyward-io/keyward/adopt"
	"github.com/keyward-io/keyward/custody"
)

// AdoptPath is where the adoption handler (Certificates, CREATE) is served.
const AdoptPath = "/adopt-cert-manager-io-v1-certificate"

// DefaultAdoptTimeout bounds one adoption: a Secret read, two Vault reads,
// the custody write and the Secret create.
const DefaultAdoptTimeout = 8 * time.Second

// CertificateAdopter is the admission handler that adopts another
// cluster's custody record when a Certificate is created in a namespace
// labelled custody.NamespaceLabelAdoptFromCluster (package adopt). It never
// changes the Certificate. It refuses the Certificate when the record does
// not fit it or cannot be read, so that a mistake never costs the key
// silently; it lets it through, to be issued as usual, when there is no
// record or it has expired, saying so in a warning.
type CertificateAdopter struct {
	adopter    *adopt.Adopter
	namespaces client.Reader
	log        logr.Logger
	timeout    time.Duration
	results    *prometheus.CounterVec
}

// NewCertificateAdopter returns the handler. namespaces reads Namespaces
// (from a cache) for the source cluster label.
func NewCertificateAdopter(a *adopt.Adopter, namespaces client.Reader, reg prometheus.Registerer, log logr.Logger) (*CertificateAdopter, error) {
	if a == nil || namespaces == nil {
		return nil, errors.New("adoption webhook needs an adopter and a namespace reader")
	}
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_custody_adoptions_total",
		Help: "Certificates created in namespaces that adopt custody records from another cluster, by result: " +
			"adopted, secret-exists, no-record, expired, dry-run, refused (the record does not fit the Certificate), error (Vault or API).",
	}, []string{"result"})
	if err := reg.Register(results); err != nil {
		return nil, fmt.Errorf("registering adoption metrics: %w", err)
	}
	return &CertificateAdopter{adopter: a, namespaces: namespaces, log: log, timeout: DefaultAdoptTimeout, results: results}, nil
}

// Handle implements admission.Handler.
func (h *CertificateAdopter) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, result := h.handle(ctx, req)
	if result != "" {
		h.results.WithLabelValues(result).Inc()
	}
	return resp
}

func (h *CertificateAdopter) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	if req.Kind.Group != cmapi.SchemeGroupVersion.Group || req.Kind.Kind != cmapi.CertificateKind || req.Operation != admissionv1.Create {
		return admission.Allowed("not a Certificate being created"), ""
	}
	var crt cmapi.Certificate
	if err := json.Unmarshal(req.Object.Raw, &crt); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding Certificate %s/%s: %w", req.Namespace, req.Name, err)), ""
	}
	if crt.Namespace == "" {
		crt.Namespace = req.Namespace
	}
	ref := crt.Namespace + "/" + crt.Name
	log := h.log.WithValues("certificate", ref)
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	var ns corev1.Namespace
	if err := h.namespaces.Get(ctx, client.ObjectKey{Name: crt.Namespace}, &ns); err != nil {
		return admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("keyward: Certificate %s not admitted: reading namespace %s for its adoption label: %w", ref, crt.Namespace, err)), "error"
	}
	source := ns.Labels[custody.NamespaceLabelAdoptFromCluster]
	if source == "" {
		return admission.Allowed("namespace does not adopt custody records"), ""
	}
	if crt.Spec.SecretName == "" {
		return admission.Allowed("no secretName"), ""
	}
	dryRun := req.DryRun != nil && *req.DryRun
	res, err := h.adopter.Adopt(ctx, &crt, source, dryRun)
	if err != nil {
		result := "error"
		if errors.Is(err, adopt.ErrMismatch) || errors.Is(err, adopt.ErrStrict) {
			result = "refused"
		}
		log.Info("Certificate refused: custody record not adopted", "source", source, "result", result, "error", err.Error())
		return admission.Denied(fmt.Sprintf("keyward: %v (namespace %s adopts from cluster %s)", err, crt.Namespace, source)), result
	}
	log.Info("custody adoption", "source", source, "result", string(res.Outcome), "sourceVersion", res.Version,
		"serial", res.Serial, "custodyVersion", res.CustodyVersion)
	resp := admission.Allowed(string(res.Outcome))
	switch res.Outcome {
	case adopt.Adopted:
		resp = resp.WithWarnings(fmt.Sprintf("keyward: adopted the custody record %s (version %d, serial %s, valid until %s) from cluster %s for Secret %s; no new key is issued",
			res.Path, res.Version, res.Serial, res.NotAfter.UTC().Format(time.RFC3339), source, crt.Spec.SecretName))
	case adopt.NoRecord:
		resp = resp.WithWarnings(fmt.Sprintf("keyward: cluster %s holds no custody record for Secret %s/%s; cert-manager issues a new key",
			source, crt.Namespace, crt.Spec.SecretName))
	case adopt.Expired:
		resp = resp.WithWarnings(fmt.Sprintf("keyward: the custody record %s expired at %s; not adopted, cert-manager issues a new key",
			res.Path, res.NotAfter.UTC().Format(time.RFC3339)))
	case adopt.DryRun:
		resp = resp.WithWarnings(fmt.Sprintf("keyward: dry run: the custody record %s (serial %s) would be adopted; nothing was written", res.Path, res.Serial))
	}
	return resp, string(res.Outcome)
}
