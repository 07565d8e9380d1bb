package controlplane

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/controlplane/store"
)

// An etag names the vault as one read saw it: the store's revision and a
// digest of the effective properties (the configuration file with the
// stored state laid over it), "<revision>-<16 hex digits>". An edit of a
// property the file still owns changes the digest, so a read-modify-write
// computed before it fails with ABORTED instead of silently dropping it.
const etagDigestLen = 16

// etagOf renders the etag of cfg (the merged configuration) at snap.
func etagOf(cfg *config.Config, snap store.Snapshot) string {
	b, err := json.Marshal(cfg.Properties)
	if err != nil {
		panic(fmt.Sprintf("controlplane: the properties do not marshal: %v", err)) // plain data: cannot happen
	}
	sum := sha256.Sum256(b)
	return strconv.FormatInt(snap.Revision, 10) + "-" + hex.EncodeToString(sum[:etagDigestLen/2])
}

// canonicalEtag reports whether s is spelled exactly as etagOf spells an
// etag: a decimal revision without sign or leading zero, "-", and 16
// lower-case hex digits. Nothing else is an etag; "*" is handled apart.
func canonicalEtag(s string) bool {
	i := len(s) - etagDigestLen - 1
	if i < 1 || s[i] != '-' {
		return false
	}
	rev, digest := s[:i], s[i+1:]
	if len(rev) > 1 && rev[0] == '0' {
		return false
	}
	for j := 0; j < len(rev); j++ {
		if rev[j] < '0' || rev[j] > '9' {
			return false
		}
	}
	if _, err := strconv.ParseInt(rev, 10, 64); err != nil {
		return false
	}
	for j := 0; j < len(digest); j++ {
		if c := digest[j]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// etagError is a write whose etag is not the vault's current one: stale,
// or not an etag at all. Sent is echoed exactly as the caller sent it.
type etagError struct {
	Sent, Current string
	Malformed     bool
}

func (e *etagError) Error() string {
	if e.Malformed {
		return fmt.Sprintf("%q is not an etag this vault issued (want the etag of GetVault or of the previous write, or \"*\")", e.Sent)
	}
	return fmt.Sprintf("the etag %s is stale: the vault changed since it was read", e.Sent)
}

func (e *etagError) Unwrap() error { return store.ErrConflict }
