//go:build !unix

package proxy

func signalFixture() int { return 99 }
