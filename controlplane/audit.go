package controlplane

import (
	"context"
	"encoding/json"
	"log/slog"
)

// Change is one attempt through the control plane, as the audit trail
// keeps it: who, what, and the state before and after. Every write attempt
// is one Change, and so is every call refused before its handler ran
// (authentication, authorization, or a malformed write request).
type Change struct {
	// Method is the RPC, e.g. "UpdateAccessPolicies".
	Method string
	// Caller describes who called: "appid=…;oid=…;iss=…" for a token,
	// "certificate <principal>" for an admin certificate.
	Caller string
	// Address is the caller's network address.
	Address string
	// Vault is the vault changed (vault.name; as the request named it when
	// it names no vault in force).
	Vault string
	// Reason is the control-plane policy's reason for allowing (or, when
	// Outcome is "denied", refusing) the call.
	Reason string
	// Outcome is "applied", "unchanged", "refused" (validation),
	// "denied" (no or a bad credential, or the policy said no), "conflict"
	// (stale etag) or "failed".
	Outcome    string
	EtagBefore string
	EtagAfter  string
	// Before and After hold each changed property (ARM names), in force
	// before and after the write.
	Before, After map[string]any
	// Error is the refusal or failure, "" when applied.
	Error string
}

// Auditor receives every change attempt and every refused call. It must not block for long: the
// RPC waits for it.
type Auditor interface {
	Change(ctx context.Context, c Change)
}

// SlogAuditor writes each change as one structured record (msg
// "control-plane change", attribute audit=controlplane), for the log
// pipeline or an audit sink to route.
type SlogAuditor struct{ Log *slog.Logger }

// Change implements Auditor.
func (a SlogAuditor) Change(ctx context.Context, c Change) {
	level := slog.LevelInfo
	if c.Outcome != "applied" && c.Outcome != "unchanged" {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("audit", "controlplane"),
		slog.String("method", c.Method),
		slog.String("caller", c.Caller),
		slog.String("address", c.Address),
		slog.String("reason", c.Reason),
		slog.String("outcome", c.Outcome),
		slog.String("etagBefore", c.EtagBefore),
		slog.String("etagAfter", c.EtagAfter),
	}
	if c.Vault != "" {
		attrs = append(attrs, slog.String("vault", c.Vault))
	}
	if len(c.Before) > 0 || len(c.After) > 0 {
		attrs = append(attrs, slog.Any("before", jsonValue(c.Before)), slog.Any("after", jsonValue(c.After)))
	}
	if c.Error != "" {
		attrs = append(attrs, slog.String("error", c.Error))
	}
	a.Log.LogAttrs(ctx, level, "control-plane change", attrs...)
}

// jsonValue renders v through JSON, so every handler prints ARM's shapes.
func jsonValue(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(`null`)
	}
	return b
}
