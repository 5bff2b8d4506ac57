// Copyright 2026 The Keyward Authors.
// SPDX-License-Identifier: Apache-2.0

package gcpsm

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
)

var (
	secretIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	labelRE    = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
	labelKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	annKeyRE   = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$`)
)

func (s *Server) nextEtag() string {
	s.etagSeq++
	return fmt.Sprintf("%q", strconv.Itoa(s.etagSeq))
}

func notFound(name string) error {
	return status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", name)
}

func checkMeta(sec *smpb.Secret) error {
	for k, v := range sec.GetLabels() {
		if !labelKeyRE.MatchString(k) || !labelRE.MatchString(v) {
			return status.Errorf(codes.InvalidArgument, "invalid label %q", k)
		}
	}
	n := 0
	for k, v := range sec.GetAnnotations() {
		if !annKeyRE.MatchString(k) {
			return status.Errorf(codes.InvalidArgument, "invalid annotation key %q", k)
		}
		n += len(k) + len(v)
	}
	if n > MaxAnnotationsBytes {
		return status.Errorf(codes.InvalidArgument, "annotations total %d bytes, more than %d", n, MaxAnnotationsBytes)
	}
	return nil
}

// CreateSecret implements the service.
func (s *Server) CreateSecret(_ context.Context, req *smpb.CreateSecretRequest) (*smpb.Secret, error) {
	if !secretIDRE.MatchString(req.GetSecretId()) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid secret id %q", req.GetSecretId())
	}
	if err := checkMeta(req.GetSecret()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := req.GetParent() + "/secrets/" + req.GetSecretId()
	if s.secrets[name] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "Secret [%s] already exists.", name)
	}
	pb := proto.Clone(req.GetSecret()).(*smpb.Secret)
	if pb == nil {
		pb = &smpb.Secret{}
	}
	pb.Name, pb.CreateTime, pb.Etag = name, timestamppb.Now(), s.nextEtag()
	s.secrets[name] = &secret{pb: pb}
	return proto.Clone(pb).(*smpb.Secret), nil
}

// GetSecret implements the service.
func (s *Server) GetSecret(_ context.Context, req *smpb.GetSecretRequest) (*smpb.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[req.GetName()]
	if sec == nil {
		return nil, notFound(req.GetName())
	}
	return proto.Clone(sec.pb).(*smpb.Secret), nil
}

// UpdateSecret implements the service for the labels, annotations and
// version_aliases fields.
func (s *Server) UpdateSecret(_ context.Context, req *smpb.UpdateSecretRequest) (*smpb.Secret, error) {
	in := req.GetSecret()
	if err := checkMeta(in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[in.GetName()]
	if sec == nil {
		return nil, notFound(in.GetName())
	}
	if in.GetEtag() != "" && in.GetEtag() != sec.pb.Etag {
		return nil, status.Error(codes.FailedPrecondition, "The etag provided in the request does not match the current etag of the secret.")
	}
	if len(req.GetUpdateMask().GetPaths()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "update_mask is required")
	}
	for _, p := range req.GetUpdateMask().GetPaths() {
		switch p {
		case "labels":
			sec.pb.Labels = in.GetLabels()
		case "annotations":
			sec.pb.Annotations = in.GetAnnotations()
		case "version_aliases":
			sec.pb.VersionAliases = in.GetVersionAliases()
		default:
			return nil, status.Errorf(codes.InvalidArgument, "the fake cannot update field %q", p)
		}
	}
	sec.pb.Etag = s.nextEtag()
	return proto.Clone(sec.pb).(*smpb.Secret), nil
}

// DeleteSecret implements the service.
func (s *Server) DeleteSecret(_ context.Context, req *smpb.DeleteSecretRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[req.GetName()]
	if sec == nil {
		return nil, notFound(req.GetName())
	}
	if req.GetEtag() != "" && req.GetEtag() != sec.pb.Etag {
		return nil, status.Error(codes.FailedPrecondition, "The etag provided in the request does not match the current etag of the secret.")
	}
	delete(s.secrets, req.GetName())
	return &emptypb.Empty{}, nil
}

// AddSecretVersion implements the service.
func (s *Server) AddSecretVersion(_ context.Context, req *smpb.AddSecretVersionRequest) (*smpb.SecretVersion, error) {
	data := req.GetPayload().GetData()
	if len(data) > MaxPayloadBytes {
		return nil, status.Errorf(codes.InvalidArgument, "Secret Payload cannot be larger than 64KiB.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[req.GetParent()]
	if sec == nil {
		return nil, notFound(req.GetParent())
	}
	n := len(sec.versions) + 1
	v := &version{
		pb: &smpb.SecretVersion{
			Name: fmt.Sprintf("%s/versions/%d", req.GetParent(), n), CreateTime: timestamppb.Now(),
			State: smpb.SecretVersion_ENABLED, Etag: s.nextEtag(),
		},
		data: append([]byte(nil), data...),
	}
	sec.versions = append(sec.versions, v)
	return proto.Clone(v.pb).(*smpb.SecretVersion), nil
}

// ListSecretVersions implements the service: newest first, filter
// "state:ENABLED" or none, page tokens are offsets.
func (s *Server) ListSecretVersions(_ context.Context, req *smpb.ListSecretVersionsRequest) (*smpb.ListSecretVersionsResponse, error) {
	filter := strings.TrimSpace(req.GetFilter())
	if filter != "" && filter != "state:ENABLED" {
		return nil, status.Errorf(codes.InvalidArgument, "the fake understands only the filter state:ENABLED, not %q", filter)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[req.GetParent()]
	if sec == nil {
		return nil, notFound(req.GetParent())
	}
	var all []*smpb.SecretVersion
	for _, v := range sec.versions {
		if filter == "" || v.pb.State == smpb.SecretVersion_ENABLED {
			all = append(all, v.pb)
		}
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	off, _ := strconv.Atoi(req.GetPageToken())
	size := int(req.GetPageSize())
	if size <= 0 || size > 25000 {
		size = 25000
	}
	resp := &smpb.ListSecretVersionsResponse{TotalSize: int32(len(all))}
	for i := off; i < len(all) && i < off+size; i++ {
		resp.Versions = append(resp.Versions, proto.Clone(all[i]).(*smpb.SecretVersion))
	}
	if off+size < len(all) {
		resp.NextPageToken = strconv.Itoa(off + size)
	}
	return resp, nil
}

// lookupVersion finds name ("…/versions/N" or "…/versions/latest"); s.mu held.
func (s *Server) lookupVersion(name string) (*version, error) {
	parent, id, ok := strings.Cut(name, "/versions/")
	sec := s.secrets[parent]
	if !ok || sec == nil {
		return nil, notFound(name)
	}
	if id == "latest" {
		// The most recently created version, whatever its state.
		if len(sec.versions) == 0 {
			return nil, notFound(name)
		}
		return sec.versions[len(sec.versions)-1], nil
	}
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 || n > len(sec.versions) {
		return nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", name)
	}
	return sec.versions[n-1], nil
}

// GetSecretVersion implements the service.
func (s *Server) GetSecretVersion(_ context.Context, req *smpb.GetSecretVersionRequest) (*smpb.SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookupVersion(req.GetName())
	if err != nil {
		return nil, err
	}
	return proto.Clone(v.pb).(*smpb.SecretVersion), nil
}

// AccessSecretVersion implements the service.
func (s *Server) AccessSecretVersion(_ context.Context, req *smpb.AccessSecretVersionRequest) (*smpb.AccessSecretVersionResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookupVersion(req.GetName())
	if err != nil {
		return nil, err
	}
	if v.pb.State != smpb.SecretVersion_ENABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "Secret Version [%s] is in %s state.", v.pb.Name, v.pb.State)
	}
	return &smpb.AccessSecretVersionResponse{Name: v.pb.Name, Payload: &smpb.SecretPayload{Data: append([]byte(nil), v.data...)}}, nil
}

func (s *Server) setState(name, etag string, state smpb.SecretVersion_State) (*smpb.SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookupVersion(name)
	if err != nil {
		return nil, err
	}
	if etag != "" && etag != v.pb.Etag {
		return nil, status.Error(codes.FailedPrecondition, "The etag provided in the request does not match the current etag of the secret version.")
	}
	if v.pb.State == smpb.SecretVersion_DESTROYED && state != smpb.SecretVersion_DESTROYED {
		return nil, status.Errorf(codes.FailedPrecondition, "Secret Version [%s] is destroyed.", name)
	}
	v.pb.State, v.pb.Etag = state, s.nextEtag()
	if state == smpb.SecretVersion_DESTROYED {
		v.data, v.pb.DestroyTime = nil, timestamppb.Now()
	}
	return proto.Clone(v.pb).(*smpb.SecretVersion), nil
}

// DestroySecretVersion implements the service.
func (s *Server) DestroySecretVersion(_ context.Context, req *smpb.DestroySecretVersionRequest) (*smpb.SecretVersion, error) {
	return s.setState(req.GetName(), req.GetEtag(), smpb.SecretVersion_DESTROYED)
}

// DisableSecretVersion implements the service.
func (s *Server) DisableSecretVersion(_ context.Context, req *smpb.DisableSecretVersionRequest) (*smpb.SecretVersion, error) {
	return s.setState(req.GetName(), req.GetEtag(), smpb.SecretVersion_DISABLED)
}
