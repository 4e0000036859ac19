package update

import (
	"io"
	"io/fs"
	"os"
)

// File is the part of *os.File the updater writes through.
type File interface {
	io.Writer
	Name() string
	Sync() error
	Close() error
}

// FS is the filesystem the updater changes. OSFS is the real one; tests wrap
// it to simulate failures that cannot be produced for real.
type FS interface {
	Stat(name string) (fs.FileInfo, error)
	CreateTemp(dir, pattern string) (File, error)
	Chmod(name string, mode fs.FileMode) error
	Rename(from, to string) error
	Remove(name string) error
}

// OSFS is the real filesystem.
type OSFS struct{}

func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }
func (OSFS) CreateTemp(dir, pattern string) (File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return f, nil
}
func (OSFS) Chmod(name string, mode fs.FileMode) error { return os.Chmod(name, mode) }
func (OSFS) Rename(from, to string) error              { return os.Rename(from, to) }
func (OSFS) Remove(name string) error                  { return os.Remove(name) }
