//go:build !unix

package proxy

import "os/exec"

func setProcAttr(cmd *exec.Cmd) {}
