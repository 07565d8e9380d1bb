package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/vaultwall/vaultwall/authz/section"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/controlplane/store"
	"github.com/vaultwall/vaultwall/engine"
)

// StateSource names the stored state in error messages, where a file name
// would otherwise stand.
const StateSource = "control-plane state"

// Overlay holds the newest stored state known to this process and lays it
// over the configuration file on every engine load.
type Overlay struct {
	snap atomic.Pointer[store.Snapshot]
}

var _ engine.Overlay = (*Overlay)(nil)

// NewOverlay starts from snap.
func NewOverlay(snap store.Snapshot) *Overlay {
	o := &Overlay{}
	o.snap.Store(&snap)
	return o
}

// Offer makes snap current if it is newer than the one held, and reports
// whether it did. Local writes and the store's watch both offer, in any
// order; revisions only grow, so the newest always wins.
func (o *Overlay) Offer(snap store.Snapshot) bool {
	for {
		cur := o.snap.Load()
		if snap.Revision <= cur.Revision {
			return false
		}
		if o.snap.CompareAndSwap(cur, &snap) {
			return true
		}
	}
}

// Snapshot is the state held.
func (o *Overlay) Snapshot() store.Snapshot { return *o.snap.Load() }

// Version is the held state's store revision (the API's etag adds a digest
// of the effective properties).
func (o *Overlay) Version() string { return o.snap.Load().Etag() }

// Parse implements engine.Overlay.
func (o *Overlay) Parse(path string, data []byte) (*config.Config, error) {
	return Merge(path, data, o.snap.Load().State)
}

// Merge parses the configuration file's contents with the stored state
// laid over its properties: each property the state sets replaces the
// file's. The file must be valid on its own (its errors keep their file and
// line); then the merged document is validated as a whole, and its errors
// name StateSource and the field, e.g.
// "control-plane state: properties.networkAcls.ipRules[2].value: …".
func Merge(path string, data []byte, st store.State) (*config.Config, error) {
	return MergeWith(config.Parse, path, data, st)
}

// MergeWith is Merge with the file parsed by parse: config.Parse, or for a
// vault of vaults.dir config.ParseVault onto the main file, so the state
// lands on that vault's composed configuration.
func MergeWith(parse engine.ParseFunc, path string, data []byte, st store.State) (*config.Config, error) {
	base, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	if st == (store.State{}) {
		return base, nil
	}
	// The properties of a vaultwall file, an az keyvault show document or
	// an ARM template's vault resource, wherever the format keeps them.
	merged, err := config.SetProperties(data, stateProperties(st))
	if err != nil {
		return nil, err
	}
	cfg, err := parse(path, merged)
	if err != nil {
		return nil, relabel(err)
	}
	return cfg, nil
}

// stateProperties lists the properties st sets, by their ARM names.
func stateProperties(st store.State) map[string]any {
	out := map[string]any{}
	if st.PublicNetworkAccess != "" {
		out["publicNetworkAccess"] = st.PublicNetworkAccess
	}
	if st.NetworkAcls != nil {
		out["networkAcls"] = st.NetworkAcls
	}
	if st.AccessPolicies != nil {
		out["accessPolicies"] = *st.AccessPolicies
	}
	if st.RoleAssignments != nil {
		out["roleAssignments"] = *st.RoleAssignments
	}
	if st.RoleDefinitions != nil {
		out["roleDefinitions"] = *st.RoleDefinitions
	}
	for k, v := range out { // plain JSON values, as the decoded file holds
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("controlplane: %s does not marshal: %v", k, err))
		}
		var x any
		_ = json.Unmarshal(b, &x)
		out[k] = x
	}
	return out
}

// ownedProperties names the properties st sets, in a stable order.
func ownedProperties(st store.State) []string {
	var out []string
	for _, p := range []struct {
		name string
		set  bool
	}{
		{"publicNetworkAccess", st.PublicNetworkAccess != ""}, {"networkAcls", st.NetworkAcls != nil},
		{"accessPolicies", st.AccessPolicies != nil}, {"roleAssignments", st.RoleAssignments != nil},
		{"roleDefinitions", st.RoleDefinitions != nil},
	} {
		if p.set {
			out = append(out, p.name)
		}
	}
	return out
}

// relabel points the errors of a merged document at the stored state: the
// line numbers of the generated document mean nothing to anyone.
func relabel(err error) error {
	list := section.Flatten(err)
	for _, e := range list {
		var fe *config.FieldError
		if errors.As(e, &fe) {
			fe.File, fe.Line = StateSource, 0
		}
	}
	return errors.Join(list...)
}
