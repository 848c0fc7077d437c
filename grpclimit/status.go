package grpclimit

import (
	"fmt"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/multi"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// denied returns the status of a call denied by rule r.
func denied(r *multi.Rule, res ratelimit.Result) error {
	st := status.New(codes.ResourceExhausted,
		fmt.Sprintf("grpclimit: rule %q: rate limit exceeded, retry after %v", r.Name, res.RetryAfter))
	return withDetails(st,
		&errdetails.RetryInfo{RetryDelay: durationpb.New(res.RetryAfter)},
		quotaFailure(r, "rate limit exceeded"))
}

// tooCostly returns the status of a call whose cost exceeds rule r's capacity: it can
// never pass, so it carries no RetryInfo.
func tooCostly(r *multi.Rule, err error) error {
	st := status.New(codes.ResourceExhausted, "grpclimit: "+err.Error())
	return withDetails(st, quotaFailure(r, "cost exceeds capacity"))
}

func quotaFailure(r *multi.Rule, description string) *errdetails.QuotaFailure {
	return &errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
		Subject:     "rule:" + r.Name,
		Description: description,
	}}}
}

// withDetails returns st with details, or st alone if they cannot be encoded.
func withDetails(st *status.Status, details ...protoadapt.MessageV1) error {
	if withd, err := st.WithDetails(details...); err == nil {
		return withd.Err()
	}
	return st.Err()
}
