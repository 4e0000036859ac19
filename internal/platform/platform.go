// Package platform is the build matrix of SPEC §1 as seen from km itself:
// which platforms are released and what their asset is called.
package platform

import "fmt"

// Platform is one released os/arch pair.
type Platform struct {
	OS, Arch string
}

// Released is the one declarative list of released platforms (SPEC §1; the
// release engine's kmrelease/matrix.py holds the same list).
var Released = []Platform{
	{"linux", "amd64"},
	{"linux", "arm64"},
	{"darwin", "amd64"},
	{"darwin", "arm64"},
	{"windows", "amd64"},
	{"windows", "arm64"},
}

// Asset is the file name of this platform's binary: km-<os>-<arch>[.exe].
func (p Platform) Asset() string {
	name := "km-" + p.OS + "-" + p.Arch
	if p.OS == "windows" {
		name += ".exe"
	}
	return name
}

// AssetName returns the released file name for goos/goarch, or an error when
// no binary is released for that platform.
func AssetName(goos, goarch string) (string, error) {
	for _, p := range Released {
		if p.OS == goos && p.Arch == goarch {
			return p.Asset(), nil
		}
	}
	return "", fmt.Errorf("no km release is published for %s/%s", goos, goarch)
}
