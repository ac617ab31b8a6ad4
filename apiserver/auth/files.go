package auth

import (
	"fmt"
	"os"
	"path/filepath"
)

// Permissions of what this package writes. Private keys and tokens are
// secrets; certificates are public but live in a private directory anyway.
const (
	dirMode    os.FileMode = 0o700
	secretMode os.FileMode = 0o600
	publicMode os.FileMode = 0o644
)

// writeFileAtomic replaces path with data through a temporary file and a
// rename, so that a crash never leaves a half-written file behind.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTempFile(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// createFileAtomic creates path with data, complete or not at all, and fails
// with an error matching fs.ErrExist if path already exists: a hard link,
// unlike a rename, never replaces its target.
func createFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTempFile(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// writeTempFile writes data, flushed to disk, to a new file next to path and
// returns the new file's name.
func writeTempFile(path string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return tmp, nil
}

// ensurePrivateDir creates dir if needed and makes it readable by its owner only.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("restrict directory: %w", err)
	}
	return nil
}
