package controlplane

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/vaultwall/vaultwall/authz/section"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/controlplane/store"
)

// ErrorDomain is the ErrorInfo domain of the control plane's errors.
const ErrorDomain = "vaultwall.dev"

// Reasons in ErrorInfo.
const (
	ReasonEtagMismatch = "ETAG_MISMATCH"
	ReasonEtagRequired = "ETAG_REQUIRED"
	ReasonInvalid      = "INVALID_CONFIGURATION"
)

var (
	errExists  = errors.New("already exists")
	errInvalid = errors.New("the change does not validate")
	errBase    = errors.New("the configuration file does not validate")
	errStore   = errors.New("the control-plane store is unavailable")
)

// invalidError is a refused change with every problem found.
type invalidError struct{ err error }

func (e *invalidError) Error() string { return errInvalid.Error() + ": " + e.err.Error() }
func (e *invalidError) Unwrap() error { return errInvalid }

// toStatus is the one place errors become gRPC statuses.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ee *etagError
	var ce *store.ConflictError
	var ie *invalidError
	var pe *PatchError
	switch {
	case errors.As(err, &ee):
		md := map[string]string{"requestEtag": ee.Sent}
		msg := ee.Error()
		if ee.Current != "" {
			md["currentEtag"] = ee.Current
			msg += " (current etag " + ee.Current + "); read it again and retry"
		}
		return withDetails(codes.Aborted, msg, &errdetails.ErrorInfo{Reason: ReasonEtagMismatch, Domain: ErrorDomain, Metadata: md})
	case errors.As(err, &ce):
		md := map[string]string{"requestEtag": store.Etag(ce.Want)}
		msg := "the etag " + store.Etag(ce.Want) + " is stale: the vault changed since it was read"
		if ce.Current >= 0 {
			md["currentEtag"] = store.Etag(ce.Current)
			msg += " (current etag " + store.Etag(ce.Current) + "); read it again and retry"
		}
		return withDetails(codes.Aborted, msg, &errdetails.ErrorInfo{Reason: ReasonEtagMismatch, Domain: ErrorDomain, Metadata: md})
	case errors.As(err, &ie):
		br := &errdetails.BadRequest{}
		var lines []string
		for _, e := range section.Flatten(ie.err) {
			field, desc := describe(e)
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: field, Description: desc})
			if field != "" {
				lines = append(lines, field+": "+desc)
			} else {
				lines = append(lines, desc)
			}
		}
		return withDetails(codes.InvalidArgument, "the change was refused and nothing was stored:\n  "+strings.Join(lines, "\n  "),
			br, &errdetails.ErrorInfo{Reason: ReasonInvalid, Domain: ErrorDomain})
	case errors.As(err, &pe):
		return withDetails(codes.InvalidArgument, pe.Error(), &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: pe.Field, Description: pe.Msg}}})
	case errors.Is(err, errExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, errStore):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, errBase):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// describe names the field of one validation problem. One without a field
// (a policy file's) is described with its file and line.
func describe(err error) (field, desc string) {
	var fe *config.FieldError // rego.FileError too: one type
	if errors.As(err, &fe) {
		if fe.Field != "" {
			return fe.Field, fe.Err.Error()
		}
		return "", fe.Error()
	}
	return "", err.Error()
}

func withDetails(c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st := status.New(c, msg)
	if with, err := st.WithDetails(details...); err == nil {
		return with.Err()
	}
	return st.Err()
}
