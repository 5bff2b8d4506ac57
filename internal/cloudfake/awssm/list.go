// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm

import (
	"encoding/base64"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// filter is one entry of ListSecrets' Filters.
type filter struct {
	Key    string   `json:"Key"`
	Values []string `json:"Values"`
}

// filterValueRE is the documented pattern of a filter value.
var filterValueRE = regexp.MustCompile(`^!?[a-zA-Z0-9 :_@/+=.\-!]*$`)

// checkFilters validates Filters as the API reference constrains them: at
// most 10 filters of 1..10 values of at most 512 characters each. Of the
// documented keys the fake serves name, tag-key and tag-value.
func checkFilters(fs []filter) *apiError {
	if len(fs) > 10 {
		return errorf("ValidationException", "1 validation error detected: Value at 'filters' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	for _, f := range fs {
		switch f.Key {
		case "name", "tag-key", "tag-value":
		case "description", "primary-region", "owning-service", "all":
			return errorf("InvalidParameterException", "filter key %s is not served by this fake", f.Key)
		default:
			return errorf("ValidationException", "1 validation error detected: Value '%s' at 'filters.key' failed to satisfy constraint: Member must satisfy enum value set: [description, name, tag-key, tag-value, primary-region, owning-service, all]", f.Key)
		}
		if len(f.Values) < 1 || len(f.Values) > 10 {
			return errorf("ValidationException", "1 validation error detected: Value at 'filters.values' failed to satisfy constraint: Member must have length between 1 and 10")
		}
		for _, v := range f.Values {
			if len(v) > 512 || !filterValueRE.MatchString(v) {
				return errorf("ValidationException", "1 validation error detected: Value at 'filters.values' failed to satisfy constraint: Member must satisfy regular expression pattern: ^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$")
			}
		}
	}
	return nil
}

// matches reports whether sec passes every filter: within one filter any
// value may match; a value starting with "!" matches what its rest does not.
func matches(sec *secret, fs []filter) bool {
	for _, f := range fs {
		if !slices.ContainsFunc(f.Values, func(v string) bool { return matchValue(sec, f.Key, v) }) {
			return false
		}
	}
	return true
}

func matchValue(sec *secret, key, v string) bool {
	if rest, neg := strings.CutPrefix(v, "!"); neg {
		return !matchValue(sec, key, rest)
	}
	switch key {
	case "name":
		return strings.HasPrefix(sec.name, v)
	case "tag-key":
		for k := range sec.tags {
			if strings.HasPrefix(k, v) {
				return true
			}
		}
	case "tag-value":
		for _, tv := range sec.tags {
			if strings.HasPrefix(tv, v) {
				return true
			}
		}
	}
	return false
}

// listSecrets examines the next page of secrets after NextToken, in
// creation order, and returns those that match; the token names the last
// secret examined, so secrets created or deleted between pages neither
// shift nor repeat the others.
func (s *Server) listSecrets(in *request) (any, *apiError) {
	size := s.page
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > MaxListResults {
			return nil, errorf("ValidationException", "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", *in.MaxResults, MaxListResults)
		}
		size = min(size, *in.MaxResults)
	}
	if err := checkFilters(in.Filters); err != nil {
		return nil, err
	}
	if in.SortOrder != "" && in.SortOrder != "asc" && in.SortOrder != "desc" {
		return nil, errorf("ValidationException", "1 validation error detected: Value '%s' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]", in.SortOrder)
	}
	after := 0
	if in.NextToken != nil {
		raw, err := base64.StdEncoding.DecodeString(*in.NextToken)
		n, aerr := strconv.Atoi(strings.TrimPrefix(string(raw), "after:"))
		if err != nil || aerr != nil || !strings.HasPrefix(string(raw), "after:") {
			return nil, errorf("InvalidNextTokenException", "The NextToken value is invalid.")
		}
		after = n
	}
	all := make([]*secret, 0, len(s.secrets))
	for _, sec := range s.secrets {
		if sec.deleted.IsZero() || in.IncludePlannedDeletion {
			all = append(all, sec)
		}
	}
	desc := in.SortOrder == "desc"
	slices.SortFunc(all, func(a, b *secret) int {
		if desc {
			return b.seq - a.seq
		}
		return a.seq - b.seq
	})
	start := 0
	if in.NextToken != nil {
		start = slices.IndexFunc(all, func(sec *secret) bool { return (!desc && sec.seq > after) || (desc && sec.seq < after) })
		if start < 0 {
			start = len(all)
		}
	}
	end := min(start+size, len(all))
	entries := []map[string]any{}
	for _, sec := range all[start:end] {
		if matches(sec, in.Filters) {
			entries = append(entries, listEntry(sec))
		}
	}
	out := map[string]any{"SecretList": entries}
	if end < len(all) {
		out["NextToken"] = base64.StdEncoding.EncodeToString([]byte("after:" + strconv.Itoa(all[end-1].seq)))
	}
	return out, nil
}

// listEntry is a SecretListEntry: the secret's description, never a value.
func listEntry(sec *secret) map[string]any { return description(sec, "SecretVersionsToStages") }

// description is what DescribeSecret and ListSecrets say about a secret
// (never a value); the two name the version-to-stages map differently.
func description(sec *secret, stagesField string) map[string]any {
	stages := map[string][]string{}
	for _, v := range sec.versions {
		if len(v.stages) > 0 {
			stages[v.id] = slices.Clone(v.stages)
		}
	}
	tags := []tag{}
	for k, v := range sec.tags {
		tags = append(tags, tag{Key: k, Value: v})
	}
	e := map[string]any{"ARN": sec.arn, "Name": sec.name, "CreatedDate": epoch(sec.created), "Tags": tags, stagesField: stages}
	if !sec.deleted.IsZero() {
		e["DeletedDate"] = epoch(sec.deleted)
	}
	return e
}
