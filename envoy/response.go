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
//
// A response's messages are allocated together (one block holds the
// response, its oneof wrapper, the HTTP response, the metadata Struct and
// its values, and the header options): one allocation instead
// of a few dozen on the hot path. None is shared between responses.
func ResponseFrom(r authz.Response) *authv3.CheckResponse {
	return responseInto(r, nil)
}

// responseInto is ResponseFrom building an allowed response in a (zero,
// allocated with the check by Server.Check) or, when a is nil, in a block
// of its own. A refusal's block is always its own.
func responseInto(r authz.Response, a *allowedBlock) *authv3.CheckResponse {
	if r.Allowed {
		if a == nil {
			a = &allowedBlock{}
		}
		a.resp.Status = okStatus
		a.resp.DynamicMetadata = a.md.fill(r.Metadata)
		a.ok.OkResponse = &a.http
		a.resp.HttpResponse = &a.ok
		opts := headerOptions(a.ptrs[:], a.opts[:], a.values[:], len(r.Upstream)+len(r.Headers))
		a.http.Headers = fillHeaders(opts[:len(r.Upstream)], r.Upstream)
		a.http.ResponseHeadersToAdd = fillHeaders(opts[len(r.Upstream):], r.Headers)
		a.http.HeadersToRemove = r.UpstreamRemove
		return &a.resp
	}
	b := &deniedBlock{}
	b.resp.Status = deniedStatus
	if r.Status == 401 {
		b.resp.Status = unauthStatus
	}
	b.resp.DynamicMetadata = b.md.fill(r.Metadata)
	b.status.Code = typev3.StatusCode(r.Status)
	b.http.Status = &b.status
	b.http.Headers = fillHeaders(headerOptions(b.ptrs[:], b.opts[:], b.values[:], len(r.Headers)), r.Headers)
	b.http.Body = r.Body
	b.denied.DeniedResponse = &b.http
	b.resp.HttpResponse = &b.denied
	return &b.resp
}

// An allowed response sets at most 7 upstream headers and 2 response
// headers (x-ms-keyvault-network-info, x-ms-keyvault-rbac-assignment-id); a
// refusal at most 12 headers. A block holds that many header options
// inline; a response with more allocates them apart.
const (
	allowedHeaders = 9
	deniedHeaders  = 12
)

type allowedBlock struct {
	resp   authv3.CheckResponse
	ok     authv3.CheckResponse_OkResponse
	http   authv3.OkHttpResponse
	md     metadataBlock
	ptrs   [allowedHeaders]*corev3.HeaderValueOption
	opts   [allowedHeaders]corev3.HeaderValueOption
	values [allowedHeaders]corev3.HeaderValue
}

type deniedBlock struct {
	resp   authv3.CheckResponse
	denied authv3.CheckResponse_DeniedResponse
	http   authv3.DeniedHttpResponse
	status typev3.HttpStatus
	md     metadataBlock
	ptrs   [deniedHeaders]*corev3.HeaderValueOption
	opts   [deniedHeaders]corev3.HeaderValueOption
	values [deniedHeaders]corev3.HeaderValue
}

// headerOptions returns n header options wired to their values, in the
// block's arrays when they are large enough.
func headerOptions(ptrs []*corev3.HeaderValueOption, opts []corev3.HeaderValueOption, values []corev3.HeaderValue, n int) []*corev3.HeaderValueOption {
	if n > len(ptrs) {
		ptrs = make([]*corev3.HeaderValueOption, n)
		opts = make([]corev3.HeaderValueOption, n)
		values = make([]corev3.HeaderValue, n)
	}
	for i := range n {
		opts[i].Header = &values[i]
		ptrs[i] = &opts[i]
	}
	return ptrs[:n]
}

// fillHeaders sets opts to hs; nil when there are none.
func fillHeaders(opts []*corev3.HeaderValueOption, hs []authz.Header) []*corev3.HeaderValueOption {
	if len(hs) == 0 {
		return nil
	}
	for i, h := range hs {
		opts[i].Header.Key, opts[i].Header.Value = h.Name, h.Value
		opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	}
	return opts
}

// metadataBlock holds the dynamic metadata Struct and its values.
type metadataBlock struct {
	st      structpb.Struct
	values  [mdFields]structpb.Value
	strings [mdFields]structpb.Value_StringValue
	allowed structpb.Value_BoolValue
}

const mdFields = 10

func (b *metadataBlock) fill(m authz.Metadata) *structpb.Struct {
	optional := [...][2]string{
		{MDOperation, m.Operation}, {MDCode, m.Code}, {MDNetworkRule, m.NetworkRule}, {MDPolicyRule, m.PolicyRule},
		{MDClientIP, m.ClientIP}, {MDTrustedService, m.Trusted}, {MDPrivateEndpoint, m.Endpoint},
	}
	n := 3
	for _, kv := range optional {
		if kv[1] != "" {
			n++
		}
	}
	// The exact size: up to 8 entries, a map is one group, not a table.
	f := make(map[string]*structpb.Value, n)
	i := 0
	put := func(k, v string) {
		b.strings[i].StringValue = v
		b.values[i].Kind = &b.strings[i]
		f[k] = &b.values[i]
		i++
	}
	put(MDDecisionID, m.DecisionID)
	put(MDStage, m.Stage)
	b.allowed.BoolValue = m.Allowed
	b.values[i].Kind = &b.allowed
	f[MDAllowed] = &b.values[i]
	i++
	for _, kv := range optional {
		if kv[1] != "" {
			put(kv[0], kv[1])
		}
	}
	b.st.Fields = f
	return &b.st
}
