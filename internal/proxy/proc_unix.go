//go:build unix

package proxy

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in its own process group, so a Ctrl-C at the
// terminal reaches it once, through km's forwarding, not twice.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
