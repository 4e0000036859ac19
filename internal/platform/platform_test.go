package platform

import "testing"

func TestAssetName(t *testing.T) {
	tests := []struct {
		os, arch, want string
		ok             bool
	}{
		{"linux", "amd64", "km-linux-amd64", true},
		{"linux", "arm64", "km-linux-arm64", true},
		{"darwin", "amd64", "km-darwin-amd64", true},
		{"darwin", "arm64", "km-darwin-arm64", true},
		{"windows", "amd64", "km-windows-amd64.exe", true},
		{"windows", "arm64", "km-windows-arm64.exe", true},
		{"linux", "386", "", false},
		{"freebsd", "amd64", "", false},
		{"windows", "386", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		got, err := AssetName(tt.os, tt.arch)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("AssetName(%q, %q) = %q, %v; want %q, ok=%v", tt.os, tt.arch, got, err, tt.want, tt.ok)
		}
	}
	if len(Released) != 6 {
		t.Fatalf("SPEC §1 lists 6 platforms, Released has %d", len(Released))
	}
}
