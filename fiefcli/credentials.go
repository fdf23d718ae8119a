package fiefcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/fief-go/fief"
)

// maxCredentialsSize caps the credentials file read; a bigger file is
// treated as unparsable.
const maxCredentialsSize = 1 << 20

// credentials is the content of the credentials file, in the reference
// client's format.
type credentials struct {
	UserInfo fief.UserInfo `json:"userinfo"`
	Tokens   *fief.Tokens  `json:"tokens"`
}

// loadCredentials reads the credentials file at path. It returns nil, nil
// when the file does not exist or holds no usable credentials, and an
// error when it cannot be read or is not a trustworthy regular file.
func loadCredentials(path string) (*credentials, error) {
	// Lstat, then open and compare with the opened file: a symbolic link
	// planted at the path, or swapped in between, is never read through.
	linfo, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fiefcli: credentials file: %w", err)
	}
	if linfo.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("fiefcli: credentials file %s is a symbolic link; remove it", path)
	}
	if !linfo.Mode().IsRegular() {
		return nil, fmt.Errorf("fiefcli: credentials file %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // removed meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("fiefcli: credentials file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("fiefcli: credentials file: %w", err)
	}
	if !os.SameFile(linfo, info) {
		return nil, fmt.Errorf("fiefcli: credentials file %s changed while being opened", path)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		// Files written by the reference client are 0644. Tighten through
		// the open descriptor; this fails if another user owns the file.
		if err := f.Chmod(0o600); err != nil {
			return nil, fmt.Errorf("fiefcli: credentials file %s is accessible to other users and its permissions cannot be restricted: %w", path, err)
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialsSize+1))
	if err != nil {
		return nil, fmt.Errorf("fiefcli: credentials file: %w", err)
	}
	return parseCredentials(b), nil
}

// parseCredentials decodes the content of a credentials file, or returns
// nil when it holds no usable credentials (not JSON, too large, no access
// token).
func parseCredentials(b []byte) *credentials {
	if len(b) > maxCredentialsSize {
		return nil
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil || c.Tokens == nil || c.Tokens.AccessToken == "" {
		return nil
	}
	return &c
}

// saveCredentials writes c to path atomically: a new temporary file in the
// same directory (created exclusively, mode 0600), synced, then renamed over
// path. The rename replaces whatever is at path, a symbolic link included,
// without following it. A missing directory is created with mode 0700.
func saveCredentials(path string, c *credentials) (err error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("fiefcli: encoding the credentials: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("fiefcli: saving the credentials: %w", err)
	}
	// CreateTemp opens with O_CREATE|O_EXCL and mode 0600.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("fiefcli: saving the credentials: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("fiefcli: saving the credentials: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fiefcli: saving the credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("fiefcli: saving the credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("fiefcli: saving the credentials: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable, where the platform allows it.
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
