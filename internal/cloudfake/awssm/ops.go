// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package awssm

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

const (
	labelCurrent  = "AWSCURRENT"
	labelPrevious = "AWSPREVIOUS"
)

type secret struct {
	name, arn string
	seq       int // creation order, for ListSecrets
	created   time.Time
	deleted   time.Time
	tags      map[string]string
	versions  []*version // oldest first
}

type version struct {
	id      string
	binary  []byte
	str     *string
	stages  []string
	created time.Time
}

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// request is the union of the operations' input fields the fake reads.
type request struct {
	Name                       string   `json:"Name"`
	SecretID                   string   `json:"SecretId"`
	ClientRequestToken         string   `json:"ClientRequestToken"`
	SecretBinary               []byte   `json:"SecretBinary"`
	SecretString               *string  `json:"SecretString"`
	Tags                       []tag    `json:"Tags"`
	VersionStages              []string `json:"VersionStages"`
	VersionID                  string   `json:"VersionId"`
	VersionStage               string   `json:"VersionStage"`
	RemoveFromVersionID        string   `json:"RemoveFromVersionId"`
	MoveToVersionID            string   `json:"MoveToVersionId"`
	ForceDeleteWithoutRecovery bool     `json:"ForceDeleteWithoutRecovery"`
	RecoveryWindowInDays       *int     `json:"RecoveryWindowInDays"`
	Filters                    []filter `json:"Filters"`
	MaxResults                 *int     `json:"MaxResults"`
	NextToken                  *string  `json:"NextToken"`
	IncludePlannedDeletion     bool     `json:"IncludePlannedDeletion"`
	SortOrder                  string   `json:"SortOrder"`
}

func (r *request) target() string {
	if r.Name != "" {
		return r.Name
	}
	return r.SecretID
}

func (s *Server) handlers() map[string]func(*request) (any, *apiError) {
	return map[string]func(*request) (any, *apiError){
		OpCreateSecret:             s.createSecret,
		OpPutSecretValue:           s.putSecretValue,
		OpGetSecretValue:           s.getSecretValue,
		OpDescribeSecret:           s.describeSecret,
		OpTagResource:              s.tagResource,
		OpUpdateSecretVersionStage: s.updateStage,
		OpDeleteSecret:             s.deleteSecret,
		OpListSecrets:              s.listSecrets,
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)

// epoch is how the JSON 1.1 protocol carries timestamps: seconds as a number.
func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func (s *Server) lookup(id string, allowDeleted bool) (*secret, *apiError) {
	sec := s.secrets[id]
	if sec == nil {
		for _, c := range s.secrets {
			if c.arn == id {
				sec = c
			}
		}
	}
	if sec == nil {
		return nil, errorf("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	}
	if !sec.deleted.IsZero() && !allowDeleted {
		return nil, errorf("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
	}
	return sec, nil
}

func (s *Server) createSecret(in *request) (any, *apiError) {
	if !nameRE.MatchString(in.Name) {
		return nil, errorf("ValidationException", "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	if old := s.secrets[in.Name]; old != nil {
		if !old.deleted.IsZero() {
			return nil, errorf("InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		return nil, errorf("ResourceExistsException", "The operation failed because the secret %s already exists.", in.Name)
	}
	if err := checkTags(map[string]string{}, in.Tags); err != nil {
		return nil, err
	}
	s.seq++
	sec := &secret{name: in.Name, seq: s.seq, created: time.Now(), tags: map[string]string{},
		arn: fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%06d", s.Region, AccountID, in.Name, s.seq%1000000)}
	for _, t := range in.Tags {
		sec.tags[t.Key] = t.Value
	}
	out := map[string]any{"ARN": sec.arn, "Name": sec.name}
	if in.SecretBinary != nil || in.SecretString != nil {
		in.VersionStages = nil
		if _, err := s.addVersion(sec, in); err != nil {
			return nil, err
		}
		out["VersionId"] = in.ClientRequestToken
	}
	s.secrets[in.Name] = sec
	return out, nil
}

func (s *Server) putSecretValue(in *request) (any, *apiError) {
	sec, err := s.lookup(in.SecretID, false)
	if err != nil {
		return nil, err
	}
	v, err := s.addVersion(sec, in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "VersionStages": slices.Clone(v.stages)}, nil
}

func (s *Server) addVersion(sec *secret, in *request) (*version, *apiError) {
	if n := len(in.SecretBinary); n > MaxValueBytes || (in.SecretString != nil && len(*in.SecretString) > MaxValueBytes) {
		return nil, errorf("ValidationException", "1 validation error detected: Value at 'secretBinary' failed to satisfy constraint: Member must have length less than or equal to %d", MaxValueBytes)
	}
	if in.SecretBinary == nil && in.SecretString == nil {
		return nil, errorf("InvalidParameterException", "You must provide either SecretString or SecretBinary.")
	}
	if l := len(in.ClientRequestToken); l < 32 || l > 64 {
		return nil, errorf("ValidationException", "ClientRequestToken must be 32 to 64 characters long")
	}
	for _, v := range sec.versions {
		if v.id != in.ClientRequestToken {
			continue
		}
		if bytes.Equal(v.binary, in.SecretBinary) && ((v.str == nil && in.SecretString == nil) || (v.str != nil && in.SecretString != nil && *v.str == *in.SecretString)) {
			return v, nil
		}
		return nil, errorf("ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{labelCurrent}
	}
	if err := s.checkLabelLimit(sec, stages); err != nil {
		return nil, err
	}
	v := &version{id: in.ClientRequestToken, binary: in.SecretBinary, str: in.SecretString, created: time.Now()}
	sec.versions = append(sec.versions, v)
	for _, l := range stages {
		moveLabel(sec, l, v)
	}
	prune(sec)
	return v, nil
}

func (s *Server) checkLabelLimit(sec *secret, adding []string) *apiError {
	labels := map[string]bool{labelPrevious: true}
	for _, v := range sec.versions {
		for _, l := range v.stages {
			labels[l] = true
		}
	}
	for _, l := range adding {
		labels[l] = true
	}
	if len(labels) > MaxLabelsPerSecret {
		return errorf("LimitExceededException", "A secret can have at most %d staging labels attached across all of its versions.", MaxLabelsPerSecret)
	}
	return nil
}

// moveLabel attaches label to v, taking it from the version that had it;
// AWSCURRENT's previous holder gets AWSPREVIOUS.
func moveLabel(sec *secret, label string, v *version) {
	for _, o := range sec.versions {
		if o == v || !slices.Contains(o.stages, label) {
			continue
		}
		o.stages = slices.DeleteFunc(o.stages, func(x string) bool { return x == label })
		if label == labelCurrent {
			moveLabel(sec, labelPrevious, o)
		}
	}
	if !slices.Contains(v.stages, label) {
		v.stages = append(v.stages, label)
	}
}

// prune drops the oldest versions without labels beyond MaxVersions.
func prune(sec *secret) {
	for len(sec.versions) > MaxVersions {
		i := slices.IndexFunc(sec.versions, func(v *version) bool { return len(v.stages) == 0 })
		if i < 0 {
			return
		}
		sec.versions = slices.Delete(sec.versions, i, i+1)
	}
}

func (s *Server) getSecretValue(in *request) (any, *apiError) {
	sec, err := s.lookup(in.SecretID, false)
	if err != nil {
		return nil, err
	}
	stage := in.VersionStage
	if stage == "" && in.VersionID == "" {
		stage = labelCurrent
	}
	for _, v := range sec.versions {
		if (in.VersionID == "" || v.id == in.VersionID) && (stage == "" || slices.Contains(v.stages, stage)) {
			out := map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "VersionStages": slices.Clone(v.stages), "CreatedDate": epoch(v.created)}
			if v.binary != nil {
				out["SecretBinary"] = v.binary
			}
			if v.str != nil {
				out["SecretString"] = *v.str
			}
			return out, nil
		}
	}
	return nil, errorf("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s, VersionStage: %s", in.VersionID, stage)
}

func (s *Server) describeSecret(in *request) (any, *apiError) {
	sec, err := s.lookup(in.SecretID, true)
	if err != nil {
		return nil, err
	}
	return description(sec, "VersionIdsToStages"), nil
}

func checkTags(have map[string]string, add []tag) *apiError {
	keys := map[string]bool{}
	for k := range have {
		keys[k] = true
	}
	for _, t := range add {
		if len(t.Key) < 1 || len(t.Key) > 128 || len(t.Value) > MaxTagValue || strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return errorf("ValidationException", "invalid tag %q: keys are 1 to 128 characters and may not start with aws:, values at most %d", t.Key, MaxTagValue)
		}
		keys[t.Key] = true
	}
	if len(keys) > MaxTags {
		return errorf("LimitExceededException", "A secret can have at most %d tags.", MaxTags)
	}
	return nil
}

func (s *Server) tagResource(in *request) (any, *apiError) {
	sec, err := s.lookup(in.SecretID, false)
	if err != nil {
		return nil, err
	}
	if err := checkTags(sec.tags, in.Tags); err != nil {
		return nil, err
	}
	for _, t := range in.Tags {
		sec.tags[t.Key] = t.Value
	}
	return map[string]any{}, nil
}

func (s *Server) updateStage(in *request) (any, *apiError) {
	sec, err := s.lookup(in.SecretID, false)
	if err != nil {
		return nil, err
	}
	find := func(id string) *version {
		i := slices.IndexFunc(sec.versions, func(v *version) bool { return v.id == id })
		if i < 0 {
			return nil
		}
		return sec.versions[i]
	}
	if in.RemoveFromVersionID != "" {
		v := find(in.RemoveFromVersionID)
		if v == nil || !slices.Contains(v.stages, in.VersionStage) {
			return nil, errorf("InvalidParameterException", "The staging label %s is not attached to version %s.", in.VersionStage, in.RemoveFromVersionID)
		}
		v.stages = slices.DeleteFunc(v.stages, func(x string) bool { return x == in.VersionStage })
	}
	if in.MoveToVersionID != "" {
		v := find(in.MoveToVersionID)
		if v == nil {
			return nil, errorf("ResourceNotFoundException", "Secrets Manager can't find the specified secret version.")
		}
		if err := s.checkLabelLimit(sec, []string{in.VersionStage}); err != nil {
			return nil, err
		}
		moveLabel(sec, in.VersionStage, v)
	}
	prune(sec)
	return map[string]any{"ARN": sec.arn, "Name": sec.name}, nil
}

func (s *Server) deleteSecret(in *request) (any, *apiError) {
	sec, err := s.lookup(in.SecretID, true)
	if err != nil {
		return nil, err
	}
	if in.ForceDeleteWithoutRecovery && in.RecoveryWindowInDays != nil {
		return nil, errorf("InvalidParameterException", "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	now := time.Now()
	if in.ForceDeleteWithoutRecovery {
		delete(s.secrets, sec.name)
	} else if sec.deleted.IsZero() {
		sec.deleted = now
	}
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "DeletionDate": epoch(now)}, nil
}
