package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/vaultwall/vaultwall/authz"
)

// Dynamic-metadata keys, under envoy.filters.http.ext_authz in Envoy's
// access log: %DYNAMIC_METADATA(envoy.filters.http.ext_authz:decision_id)%.
const (
	MDDecisionID      = "decision_id"
	MDAllowed         = "allowed"
	MDStage           = "stage"
	MDOperation       = "operation"
	MDCode            = "code"
	MDNetworkRule     = "network_rule"
	MDPolicyRule      = "policy_rule"
	MDClientIP        = "client_ip"
	MDTrustedService  = "trusted_service"
	MDPrivateEndpoint = "private_endpoint"
)

var (
	okStatus     = &rpcstatus.Status{Code: int32(code.Code_OK)}
	deniedStatus = &rpcstatus.Status{Code: int32(code.Code_PERMISSION_DENIED)}
	unauthStatus = &rpcstatus.Status{Code: int32(code.Code_UNAUTHENTICATED)}
)

// ResponseFrom translates a decision's response into Envoy's CheckResponse.
// Headers are always set with OVERWRITE_IF_EXISTS_OR_ADD: the deprecated
// append flag and newer Envoys' default would add duplicates instead.
func ResponseFrom(r authz.Response) *authv3.CheckResponse {
	resp := &authv3.CheckResponse{DynamicMetadata: metadata(r.Metadata)}
	if r.Allowed {
		resp.Status = okStatus
		resp.HttpResponse = &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:              headerOptions(r.Upstream),
			HeadersToRemove:      r.UpstreamRemove,
			ResponseHeadersToAdd: headerOptions(r.Headers),
		}}
		return resp
	}
	resp.Status = deniedStatus
	if r.Status == 401 {
		resp.Status = unauthStatus
	}
	resp.HttpResponse = &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(r.Status)},
		Headers: headerOptions(r.Headers),
		Body:    r.Body,
	}}
	return resp
}

func headerOptions(hs []authz.Header) []*corev3.HeaderValueOption {
	if len(hs) == 0 {
		return nil
	}
	out := make([]*corev3.HeaderValueOption, len(hs))
	backing := make([]corev3.HeaderValueOption, len(hs))
	values := make([]corev3.HeaderValue, len(hs))
	for i, h := range hs {
		values[i].Key, values[i].Value = h.Name, h.Value
		backing[i].Header = &values[i]
		backing[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		out[i] = &backing[i]
	}
	return out
}

func metadata(m authz.Metadata) *structpb.Struct {
	f := make(map[string]*structpb.Value, 10)
	f[MDDecisionID] = structpb.NewStringValue(m.DecisionID)
	f[MDAllowed] = structpb.NewBoolValue(m.Allowed)
	f[MDStage] = structpb.NewStringValue(m.Stage)
	put := func(k, v string) {
		if v != "" {
			f[k] = structpb.NewStringValue(v)
		}
	}
	put(MDOperation, m.Operation)
	put(MDCode, m.Code)
	put(MDNetworkRule, m.NetworkRule)
	put(MDPolicyRule, m.PolicyRule)
	put(MDClientIP, m.ClientIP)
	put(MDTrustedService, m.Trusted)
	put(MDPrivateEndpoint, m.Endpoint)
	return &structpb.Struct{Fields: f}
}
