//go:build !windows

package main

import "syscall"

// detached: a new session, so a terminal's signals to km's process group do
// not reach the background check.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
