//go:build windows

package update

import "os"

// processAlive reports whether a process with this id exists (FindProcess
// opens it on Windows, and fails when there is none).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
