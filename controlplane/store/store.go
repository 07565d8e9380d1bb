package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

// State is the part of the vault's properties that the control plane owns.
// Each property is either set — the stored value replaces the
// configuration file's — or absent (nil / ""), and then the file's value
// holds. A property becomes set the first time the control plane writes it.
// Shapes are ARM's, as in the configuration file.
type State struct {
	PublicNetworkAccess string                  `json:"publicNetworkAccess,omitempty"`
	NetworkAcls         *config.NetworkAcls     `json:"networkAcls,omitempty"`
	AccessPolicies      *[]authz.AccessPolicy   `json:"accessPolicies,omitempty"`
	RoleAssignments     *[]authz.RoleAssignment `json:"roleAssignments,omitempty"`
	RoleDefinitions     *[]authz.RoleDefinition `json:"roleDefinitions,omitempty"`
}

// Clone returns a deep copy, so a mutation never reaches a shared snapshot.
func (s State) Clone() State {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("store: state does not marshal: %v", err)) // plain data: cannot happen
	}
	var out State
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("store: state does not unmarshal: %v", err))
	}
	return out
}

// Snapshot is the state at one revision. Revisions only grow; Revision 0 is
// the empty store, before any write.
type Snapshot struct {
	State    State
	Revision int64
}

// Etag is the revision as the API shows it.
func (s Snapshot) Etag() string { return Etag(s.Revision) }

// Etag renders a revision as an etag.
func Etag(rev int64) string { return strconv.FormatInt(rev, 10) }

// ParseEtag reads an etag back into a revision.
func ParseEtag(etag string) (int64, error) {
	rev, err := strconv.ParseInt(etag, 10, 64)
	if err != nil || rev < 0 {
		return 0, fmt.Errorf("%w: %q is not an etag this store issued", ErrConflict, etag)
	}
	return rev, nil
}

// Store keeps the state. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the current snapshot.
	Get(ctx context.Context) (Snapshot, error)
	// CompareAndSwap stores st if the current revision is still rev, and
	// returns the new revision. A stale rev fails with an error wrapping
	// ErrConflict (a *ConflictError naming the current revision when known);
	// nothing is stored then. A nil error means the write is durable.
	CompareAndSwap(ctx context.Context, rev int64, st State) (int64, error)
	// Watch sends the current snapshot, then every later one, until ctx
	// ends; then the channel is closed. A slow reader may miss intermediate
	// snapshots, never the latest.
	Watch(ctx context.Context) <-chan Snapshot
	// Close releases the store.
	Close() error
}

// ErrConflict is a write against a revision that is no longer current.
var ErrConflict = errors.New("the etag is stale: the state changed since it was read")

// ConflictError is a failed compare-and-swap.
type ConflictError struct {
	Want    int64 // the revision the writer read
	Current int64 // the store's revision, -1 when unknown
}

func (e *ConflictError) Error() string {
	if e.Current < 0 {
		return fmt.Sprintf("%v (etag %s)", ErrConflict, Etag(e.Want))
	}
	return fmt.Sprintf("%v (etag %s, current %s)", ErrConflict, Etag(e.Want), Etag(e.Current))
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// Encode renders the state as stored: JSON.
func Encode(st State) ([]byte, error) { return json.Marshal(st) }

// Decode parses a stored state strictly: an unknown field means a newer
// vaultwall wrote it, and dropping it silently would lose a rule.
func Decode(b []byte) (State, error) {
	var st State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return State{}, fmt.Errorf("stored state: %w", err)
	}
	return st, nil
}
