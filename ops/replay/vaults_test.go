package replay_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vaultwall/vaultwall/envoy"
	"github.com/vaultwall/vaultwall/ops/audit"
	"github.com/vaultwall/vaultwall/ops/opstest"
	"github.com/vaultwall/vaultwall/ops/replay"
	"github.com/vaultwall/vaultwall/ops/shadow"
)

// TestReplayEachRecordByItsVault: with several vaults, a record is replayed
// by the candidate's vault of its resourceId — contoso's allow stays an
// allow, fabrikam's firewall refusal stays one — and a record of a vault
// the candidate lacks is not replayable.
func TestReplayEachRecordByItsVault(t *testing.T) {
	path, set, _ := opstest.ExampleVaults(t)
	raw, err := os.ReadFile("../../examples/requests/secret-get.json")
	if err != nil {
		t.Fatal(err)
	}
	recordFor := func(host string) *audit.Record {
		var cr authv3.CheckRequest
		if err := protojson.Unmarshal([]byte(strings.ReplaceAll(string(raw), "contoso-vault.vault.azure.net", host)), &cr); err != nil {
			t.Fatal(err)
		}
		return audit.FromDecision(envoy.Decide(t.Context(), set.Vaults, &cr), 0)
	}
	contoso, fabrikam := recordFor("contoso-vault.vault.azure.net"), recordFor("fabrikam-vault.vault.azure.net")
	if !contoso.Vaultwall.Allowed || fabrikam.Vaultwall.Allowed || contoso.ResourceID == fabrikam.ResourceID {
		t.Fatalf("recorded: contoso %v %s, fabrikam %v %s", contoso.Vaultwall.Allowed, contoso.ResourceID,
			fabrikam.Vaultwall.Allowed, fabrikam.ResourceID)
	}

	r, err := replay.Open(t.Context(), path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for name, rec := range map[string]*audit.Record{"contoso": contoso, "fabrikam": fabrikam} {
		res, err := r.Replay(t.Context(), rec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Kind != shadow.Same || res.After.Allowed != rec.Vaultwall.Allowed {
			t.Errorf("%s replayed as %+v, recorded allowed=%v", name, res, rec.Vaultwall.Allowed)
		}
	}
	other := *contoso
	other.ResourceID = strings.Replace(other.ResourceID, "CONTOSO-VAULT", "OTHER-VAULT", 1)
	if _, err := r.Replay(t.Context(), &other); !errors.Is(err, replay.ErrNotReplayable) {
		t.Errorf("a record of a vault the candidate lacks: err = %v", err)
	}
}
