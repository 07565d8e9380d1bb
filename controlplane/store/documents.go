package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Document is a vault's whole document (a vault file of vaults.dir, YAML
// or JSON) kept by the control plane: a vault created through the API.
type Document struct {
	Name string // the vault's name, lower case
	Data []byte
	// Version changes whenever Data does (the etag of DeleteVault).
	Version string
}

// ErrExists is a create of a document whose vault is already stored.
var ErrExists = errors.New("a vault of that name is already stored")

// ErrNotStored is a delete of a vault with no stored document.
var ErrNotStored = errors.New("no vault of that name is stored")

// Documents keeps the vault documents of a multi-vault configuration.
// Implementations are safe for concurrent use.
type Documents interface {
	// List returns every stored document, by name.
	List(ctx context.Context) ([]Document, error)
	// Create stores data as the document of vault name if none is stored
	// (else ErrExists), and returns its version.
	Create(ctx context.Context, name string, data []byte) (string, error)
	// Delete removes the document of vault name if its version is still
	// version ("*": whatever it is); a stale version fails with an error
	// wrapping ErrConflict, a missing document with ErrNotStored.
	Delete(ctx context.Context, name, version string) error
}

// DocumentFile is the file store's file of the document of the vault
// called name: beside path, vaultwall-state.json → vaultwall-state.<vault>.vault.yaml
// (vault names hold no dot, so it is never a vault's state file).
func DocumentFile(path, name string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + "." + strings.ToLower(name) + ".vault.yaml"
}

// FileDocuments keeps each document in its own file beside the state
// file path (DocumentFile); writers are serialised by an advisory lock on
// <path>.documents.lock.
type FileDocuments struct {
	path string
}

var _ Documents = (*FileDocuments)(nil)

// OpenFileDocuments opens the documents kept beside the state file path.
func OpenFileDocuments(path string) (*FileDocuments, error) {
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("vault documents beside %s: the directory does not exist", path)
	}
	return &FileDocuments{path: path}, nil
}

// fileVersion is a document file's version: a digest of its bytes.
func fileVersion(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// List reads every document file.
func (d *FileDocuments) List(ctx context.Context) ([]Document, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stem := strings.TrimSuffix(d.path, filepath.Ext(d.path)) + "."
	matches, err := filepath.Glob(globEscape(stem) + "*.vault.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	var out []Document
	for _, m := range matches {
		name := strings.TrimSuffix(strings.TrimPrefix(m, stem), ".vault.yaml")
		if name == "" || strings.Contains(name, ".") {
			continue
		}
		b, err := os.ReadFile(m)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the glob
		}
		if err != nil {
			return nil, fmt.Errorf("vault document %s: %w", m, err)
		}
		out = append(out, Document{Name: name, Data: b, Version: fileVersion(b)})
	}
	return out, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// Create writes the document file if it does not exist.
func (d *FileDocuments) Create(ctx context.Context, name string, data []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	unlock, err := (&File{path: d.path + ".documents"}).lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	p := DocumentFile(d.path, name)
	if _, err := os.Stat(p); err == nil {
		return "", fmt.Errorf("%w: %s", ErrExists, p)
	}
	if err := writeAtomic(p, data); err != nil {
		return "", fmt.Errorf("vault document: %w", err)
	}
	return fileVersion(data), nil
}

// Delete removes the document file if its version is still version.
func (d *FileDocuments) Delete(ctx context.Context, name, version string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := (&File{path: d.path + ".documents"}).lock()
	if err != nil {
		return err
	}
	defer unlock()
	p := DocumentFile(d.path, name)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotStored
	}
	if err != nil {
		return fmt.Errorf("vault document: %w", err)
	}
	if version != "*" && version != fileVersion(b) {
		return fmt.Errorf("%w (etag %s, current %s)", ErrConflict, version, fileVersion(b))
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("vault document: %w", err)
	}
	return nil
}
