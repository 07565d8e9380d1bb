package controlplane

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

// TestRoleAssignmentScopeTable: the control plane accepts and refuses the
// scopes of config's shared table (config/testdata/role-assignment-scopes.json,
// which config's TestRoleAssignmentScopeTable runs through the file) as the
// configuration file does, with the same meaning: an assignment at the
// vault's resource group or subscription is stored as the whole vault's;
// another vault's, resource group's or subscription's, a management group's
// or one without its leading "/" is refused with INVALID_ARGUMENT and
// nothing is stored. Listing by a scope takes the same rule.
func TestRoleAssignmentScopeTable(t *testing.T) {
	s, _ := testServer(t)
	ctx := admin(t)
	vaultID := getVault(t, s).GetResourceId()
	raw, err := os.ReadFile("../config/testdata/role-assignment-scopes.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct{ Scope, Stored, Why string }
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(vaultID, "/") // "", subscriptions, sub, resourceGroups, rg, …, vaults, name
	sub, rg, name := parts[2], parts[4], parts[len(parts)-1]
	placeholders := strings.NewReplacer("{vault}", vaultID, "{VAULT}", strings.ToUpper(vaultID), "{sub}", sub,
		"{rg}", rg, "{RG}", strings.ToUpper(rg), "{name}", name)
	for i, tc := range cases {
		scope := placeholders.Replace(tc.Scope)
		before := getVault(t, s).GetEtag()
		resp, err := createAssignment(ctx, s, &v1.RoleAssignment{PrincipalId: fmt.Sprintf("5a5a5a5a-0000-4000-8000-%012d", i),
			RoleDefinitionId: "Key Vault Secrets User", Scope: scope})
		list, lerr := call(ctx, s, "ListRoleAssignments", &v1.ListRoleAssignmentsRequest{Scope: scope}, s.ListRoleAssignments)
		if tc.Stored == "" {
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("create at %q (%s): %v, want InvalidArgument", scope, tc.Why, err)
			}
			if getVault(t, s).GetEtag() != before {
				t.Errorf("create at %q (%s): something was stored", scope, tc.Why)
			}
			// "" lists every assignment: no scope to refuse.
			if scope != "" && status.Code(lerr) != codes.InvalidArgument {
				t.Errorf("list at %q (%s): %v, want InvalidArgument", scope, tc.Why, lerr)
			}
			continue
		}
		if err != nil {
			t.Errorf("create at %q (%s): %v", scope, tc.Why, err)
			continue
		}
		if got := resp.GetRoleAssignment().GetScope(); got != tc.Stored {
			t.Errorf("create at %q (%s) stored as %q, want %q", scope, tc.Why, got, tc.Stored)
		}
		if lerr != nil {
			t.Errorf("list at %q (%s): %v", scope, tc.Why, lerr)
			continue
		}
		found := false
		for _, ra := range list.GetRoleAssignments() {
			found = found || ra.GetId() == resp.GetRoleAssignment().GetId()
			if scope != "" && ra.GetScope() != tc.Stored {
				t.Errorf("list at %q (%s) returned %s at %q", scope, tc.Why, ra.GetId(), ra.GetScope())
			}
		}
		if !found {
			t.Errorf("list at %q (%s) lacks the assignment just created", scope, tc.Why)
		}
	}
}
