// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package apisix

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// APISIX's API-driven standalone mode (deployment.role traditional,
// role_traditional.config_provider yaml) keeps its whole configuration in
// memory and offers one Admin API resource for it, configsPath:
//
//   - GET answers 200 with the configuration as one JSON object: an array
//     per resource kind ("routes", "ssls", ...), a number
//     "<kind>_conf_version" per kind (0 for all of them before the first
//     write), and the metadata of the last write ("X-Digest",
//     "X-Last-Modified", also sent as response headers).
//   - PUT replaces it. The X-Digest header is required (400 "missing
//     digest header" without it), an opaque string that APISIX stores; a
//     PUT whose digest equals the stored one changes nothing and is answered
//     204. Otherwise, for each kind: without "<kind>_conf_version" in the
//     body, the version becomes the stored one + 1 and the kind's array
//     replaces the stored one (no array: none left); with a version lower
//     than the stored one the PUT is refused (400 "<kind>_conf_version must
//     be greater than or equal to (<stored>)"); with the stored version the
//     stored array is kept and the body's array ignored; with a higher one
//     the body's array replaces it. Every object is checked against the
//     kind's schema (400 "invalid <kind> at index <i>, err: ..."). Accepted:
//     202.
//   - An object whose modifiedIndex equals the one APISIX holds for its id
//     is not reloaded; one without modifiedIndex always is.
//
// Sources: docs.api7.ai/apisix/reference/api-standalone-usage (APISIX
// 3.13), apisix.apache.org/docs/apisix/deployment-modes, and APISIX's
// apisix/admin/standalone.lua and t/admin/standalone.spec.ts.
//
// So the sink reads the configuration, replaces or adds its own SSL object
// (without modifiedIndex, so that it is reloaded), sets ssls_conf_version to
// the version it read + 1, sends every other kind back with the version it
// read, and reads again to check that its object is the one APISIX holds.
// Sending the versions it read is what keeps a concurrent writer's change
// from being lost: if another writer bumped a kind since the GET, APISIX
// refuses the PUT (400, retried as transient); if it bumped ssls to exactly
// the version the sink sends, APISIX keeps the other writer's SSL objects
// and the check after the PUT fails (transient, retried).

const configsPath = "/apisix/admin/configs"

// Keys of the configuration object the sink handles itself.
const (
	sslsKey        = "ssls"
	sslsVersionKey = "ssls_conf_version"
)

// metadataKeys are stored by APISIX next to the resources; they are not
// part of what a PUT sets.
var metadataKeys = []string{"X-Digest", "X-Last-Modified"}

// deliverStandalone makes obj the SSL object id in a standalone APISIX,
// leaving everything else as it is. key is obj's private key, for redaction.
func (s *Sink) deliverStandalone(ctx context.Context, id string, obj sslObject, key []byte) error {
	conf, err := s.getConfig(ctx, key)
	if err != nil {
		return err
	}
	if served, err := servesSSL(conf, id, obj); err != nil {
		return err
	} else if served {
		// Already there (e.g. a Resync while APISIX kept its memory): a
		// PUT would only make APISIX reload every SSL object.
		return nil
	}
	body, err := mergeSSL(conf, id, obj)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	header := http.Header{"X-Digest": {hex.EncodeToString(sum[:])}}
	a, err := s.call(ctx, http.MethodPut, configsPath, body, header, [][]byte{key})
	if err != nil {
		return err
	}
	if err := classify(http.MethodPut, configsPath, a.status, a.msg); err != nil {
		return err
	}
	// 202 (loaded) or 204 (APISIX already holds a configuration with this
	// digest, i.e. this very body): either way, check what APISIX holds.
	if conf, err = s.getConfig(ctx, key); err != nil {
		return fmt.Errorf("checking the configuration after the PUT: %w", err)
	}
	served, err := servesSSL(conf, id, obj)
	if err != nil {
		return fmt.Errorf("checking the configuration after the PUT: %w", err)
	}
	if !served {
		return fmt.Errorf("PUT %s: APISIX answered %d but does not hold SSL object %s as sent: another writer replaced the configuration concurrently; will retry", configsPath, a.status, id)
	}
	return nil
}

// getConfig reads APISIX's configuration. It holds every key APISIX serves:
// keep it for the call only, never log it.
func (s *Sink) getConfig(ctx context.Context, key []byte) (map[string]json.RawMessage, error) {
	a, err := s.call(ctx, http.MethodGet, configsPath, nil, http.Header{"Accept": {"application/json"}}, [][]byte{key})
	if err != nil {
		return nil, err
	}
	if err := classify(http.MethodGet, configsPath, a.status, a.msg); err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: APISIX answered %d, want 200 with the configuration", configsPath, a.status)
	}
	var conf map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &conf); err != nil || conf == nil {
		return nil, fmt.Errorf("GET %s: the answer is not a JSON object (%s); is this APISIX in API-driven standalone mode?", configsPath, describeJSONError(err))
	}
	return conf, nil
}

// describeJSONError says what is wrong without quoting the document, which
// holds keys.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	switch {
	case err == nil:
		return "null"
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at offset %d", syn.Offset)
	default:
		return "unexpected JSON type"
	}
}

// sslList returns the ssls array of conf (APISIX may encode an empty one
// as {} or leave it out).
func sslList(conf map[string]json.RawMessage) ([]json.RawMessage, error) {
	raw := bytes.TrimSpace(conf[sslsKey])
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) || bytes.Equal(raw, []byte("{}")) {
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("APISIX's configuration: %q is not an array (%s)", sslsKey, describeJSONError(err))
	}
	return list, nil
}

// objectID is the id of a configuration object, which APISIX accepts as
// a string or a number.
func objectID(raw json.RawMessage) string {
	var o struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(raw, &o) != nil || len(o.ID) == 0 {
		return ""
	}
	var str string
	if json.Unmarshal(o.ID, &str) == nil {
		return str
	}
	return string(o.ID)
}

// servesSSL says whether conf holds SSL object id with obj's fields.
func servesSSL(conf map[string]json.RawMessage, id string, obj sslObject) (bool, error) {
	list, err := sslList(conf)
	if err != nil {
		return false, err
	}
	for _, raw := range list {
		if objectID(raw) != id {
			continue
		}
		var have sslObject
		if json.Unmarshal(raw, &have) != nil {
			return false, nil
		}
		return reflect.DeepEqual(have, obj), nil
	}
	return false, nil
}

// standaloneSSL is the sink's object in the ssls array: the SSL object with
// its id, and no modifiedIndex so that APISIX always reloads it.
type standaloneSSL struct {
	ID string `json:"id"`
	sslObject
}

// mergeSSL returns the body of the PUT: conf with obj as SSL object id
// (replacing the object with that id, or added at the end), ssls_conf_version
// one more than conf's, everything else as conf has it.
func mergeSSL(conf map[string]json.RawMessage, id string, obj sslObject) ([]byte, error) {
	list, err := sslList(conf)
	if err != nil {
		return nil, err
	}
	version, err := confVersion(conf[sslsVersionKey])
	if err != nil {
		return nil, err
	}
	ours, err := json.Marshal(standaloneSSL{ID: id, sslObject: obj})
	if err != nil {
		return nil, fmt.Errorf("encoding SSL object %s: %w", id, err)
	}
	merged := make([]json.RawMessage, 0, len(list)+1)
	placed := false
	for _, raw := range list {
		if objectID(raw) != id {
			merged = append(merged, raw)
			continue
		}
		if !placed {
			merged = append(merged, ours)
			placed = true
		}
		// A second object with our id would make APISIX refuse the whole
		// configuration (duplicate id): drop it.
	}
	if !placed {
		merged = append(merged, ours)
	}
	out := make(map[string]json.RawMessage, len(conf)+2)
	for k, v := range conf {
		out[k] = v
	}
	for _, k := range metadataKeys {
		delete(out, k)
	}
	if out[sslsKey], err = json.Marshal(merged); err != nil {
		return nil, fmt.Errorf("encoding the ssls array: %w", err)
	}
	out[sslsVersionKey] = json.RawMessage(strconv.FormatInt(version+1, 10))
	body, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	return body, nil
}

// confVersion parses a <kind>_conf_version (absent: 0).
func confVersion(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("APISIX's configuration: %s is not a number", sslsVersionKey)
	}
	if v, err := n.Int64(); err == nil {
		return v, nil
	}
	// Lua numbers are doubles; APISIX may write 1.7e+12.
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1<<53 || f != float64(int64(f)) {
		return 0, fmt.Errorf("APISIX's configuration: %s %s is not a whole number", sslsVersionKey, n)
	}
	return int64(f), nil
}

// isConfVersionConflict recognises APISIX's answer to a PUT that carries a
// <kind>_conf_version lower than the one it holds.
func isConfVersionConflict(msg string) bool {
	return strings.Contains(msg, "_conf_version must be greater than or equal to")
}
