// Package update implements `km update`: resolve the published version,
// download this platform's binary from the immutable versioned path, verify
// its SHA-256 and replace the running executable atomically.
package update

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kilometers-ai/kilometers-cli/internal/platform"
	"github.com/kilometers-ai/kilometers-cli/internal/semver"
)

// DefaultBaseURL is the public CDN base; KM_BASE_URL overrides it.
const DefaultBaseURL = "https://get.kilometers.ai"

const (
	maxVersionBody  = 256
	maxChecksumBody = 4 << 10
	maxBinary       = 1 << 30
	tempPattern     = ".km-update-*"
)

// Updater holds everything an update depends on, so tests can point it at an
// httptest server, another OS and a fake filesystem.
type Updater struct {
	BaseURL string       // CDN base, e.g. https://get.kilometers.ai
	Client  *http.Client // nil: NewClient()
	Current string       // version of the running build (main.Version)
	GOOS    string       // selects the asset and the Windows replace path
	GOARCH  string
	ExePath string // the file to replace (the running executable)
	FS      FS     // nil: the real filesystem
}

// Result describes what Check or Update found or did.
type Result struct {
	Current   string
	Target    semver.Version
	Newer     bool // Target is newer than Current
	Updated   bool // the binary was replaced
	Explicit  bool // Target was asked for with --version
	Asset     string
	SourceURL string
	SHA256    string
}

// Error is a failed update; Error() is the one line shown to the user.
type Error struct {
	Msg  string
	Hint string
	Err  error
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// NewClient is an HTTP client with sane timeouts whose redirects obey the
// same https-or-loopback rule as the base URL.
func NewClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Minute,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			return CheckURL(req.URL)
		},
	}
}

// CheckURL refuses anything but https://, and http:// to a loopback host
// (127.0.0.0/8, ::1, localhost).
func CheckURL(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("refusing plain http:// to %s: use https:// (http is only allowed for loopback addresses)", u.Host)
	}
	return fmt.Errorf("unsupported URL scheme %q in %s: use https://", u.Scheme, u.Redacted())
}

// IsLoopback reports whether host is localhost or a loopback IP address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (u *Updater) client() *http.Client {
	if u.Client != nil {
		return u.Client
	}
	return NewClient()
}

func (u *Updater) fs() FS {
	if u.FS != nil {
		return u.FS
	}
	return OSFS{}
}

func (u *Updater) base() (*url.URL, error) {
	raw := u.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	b, err := url.Parse(raw)
	if err != nil || b.Host == "" {
		return nil, &Error{Msg: fmt.Sprintf("invalid KM_BASE_URL %q", raw), Hint: "expected e.g. " + DefaultBaseURL}
	}
	if err := CheckURL(b); err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	b.Path = strings.TrimRight(b.Path, "/")
	b.RawQuery, b.Fragment = "", ""
	return b, nil
}

func join(b *url.URL, parts ...string) string {
	c := *b
	for _, p := range parts {
		c.Path += "/" + p
	}
	return c.String()
}

// get fetches url with a size limit; a non-200 status is an *Error.
func (u *Updater) get(ctx context.Context, target string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("bad URL %s: %v", target, err)}
	}
	req.Header.Set("User-Agent", "km/"+u.Current)
	resp, err := u.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &Error{Msg: fmt.Sprintf("cannot download %s: %v", target, err), Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		msg := fmt.Sprintf("download of %s failed: HTTP %d %s", target, resp.StatusCode, http.StatusText(resp.StatusCode))
		if resp.StatusCode == http.StatusNotFound {
			msg = fmt.Sprintf("%s not found (HTTP 404)", target)
		}
		return nil, &Error{Msg: msg}
	}
	return resp, nil
}

func (u *Updater) getSmall(ctx context.Context, target string, limit int64) ([]byte, error) {
	resp, err := u.get(ctx, target)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("cannot download %s: %v", target, err), Err: err}
	}
	if int64(len(body)) > limit {
		return nil, &Error{Msg: fmt.Sprintf("%s is larger than %d bytes: not a km release file", target, limit)}
	}
	return body, nil
}

// Latest reads <base>/version.
func (u *Updater) Latest(ctx context.Context) (semver.Version, error) {
	b, err := u.base()
	if err != nil {
		return semver.Version{}, err
	}
	target := join(b, "version")
	body, err := u.getSmall(ctx, target, maxVersionBody)
	if err != nil {
		return semver.Version{}, err
	}
	v, err := semver.Parse(strings.TrimSpace(string(body)))
	if err != nil {
		return semver.Version{}, &Error{Msg: fmt.Sprintf("%s does not hold a version: %v", target, err)}
	}
	return v, nil
}

// Check compares the running build with the published version.
func (u *Updater) Check(ctx context.Context) (Result, error) {
	latest, err := u.Latest(ctx)
	if err != nil {
		return Result{}, err
	}
	return Result{Current: u.Current, Target: latest, Newer: semver.CompareBuild(u.Current, latest) < 0}, nil
}

// Update installs version (or, when version is empty, the published
// version if it is newer). Downgrades need an explicit version. On any error
// the executable at ExePath is left as it was.
func (u *Updater) Update(ctx context.Context, version string) (Result, error) {
	var res Result
	if version != "" {
		v, err := semver.Parse(version)
		if err != nil {
			return res, &Error{Msg: err.Error()}
		}
		res = Result{Current: u.Current, Target: v, Explicit: true, Newer: semver.CompareBuild(u.Current, v) < 0}
		if cur, err := semver.Parse(u.Current); err == nil && semver.Compare(cur, v) == 0 {
			return res, nil // already that version
		}
	} else {
		r, err := u.Check(ctx)
		if err != nil {
			return r, err
		}
		res = r
		if !res.Newer {
			return res, nil
		}
	}
	asset, err := platform.AssetName(u.GOOS, u.GOARCH)
	if err != nil {
		return res, &Error{Msg: err.Error()}
	}
	res.Asset = asset
	b, err := u.base()
	if err != nil {
		return res, err
	}
	if u.ExePath == "" {
		return res, &Error{Msg: "cannot tell where the running km is"}
	}
	fsys := u.fs()
	st, err := fsys.Stat(u.ExePath)
	if err != nil {
		return res, &Error{Msg: fmt.Sprintf("cannot read %s: %v", u.ExePath, err), Err: err}
	}
	binURL := join(b, "releases", res.Target.String(), asset)
	res.SourceURL = binURL

	// The checksum first: small, and a 404 here saves the big download.
	sumBody, err := u.getSmall(ctx, binURL+".sha256", maxChecksumBody)
	if err != nil {
		return res, err
	}
	want, err := parseChecksum(sumBody, asset)
	if err != nil {
		return res, &Error{Msg: fmt.Sprintf("%s.sha256: %v", binURL, err)}
	}

	// The temp file next to the binary, before downloading: an unwritable
	// directory fails fast, and the final rename stays on one filesystem.
	dir := filepath.Dir(u.ExePath)
	tmp, err := fsys.CreateTemp(dir, tempPattern)
	if err != nil {
		return res, u.writeError(dir, err)
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			fsys.Remove(tmpName)
		}
	}()

	resp, err := u.get(ctx, binURL)
	if err != nil {
		return res, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, maxBinary+1))
	resp.Body.Close()
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return res, u.writeError(dir, err)
		}
		return res, &Error{Msg: fmt.Sprintf("download of %s interrupted: %v", binURL, err), Err: err}
	}
	if n > maxBinary {
		return res, &Error{Msg: fmt.Sprintf("%s is larger than %d bytes: not a km binary", binURL, int64(maxBinary))}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		return res, &Error{Msg: fmt.Sprintf("checksum mismatch for %s: expected %s, got %s; km was not changed", binURL, want, got),
			Hint: "this is a red flag, not an outage: do not install this file"}
	}
	res.SHA256 = got
	if err := tmp.Sync(); err != nil {
		return res, u.writeError(dir, err)
	}
	if err := tmp.Close(); err != nil {
		return res, u.writeError(dir, err)
	}
	mode := st.Mode().Perm() | 0o100 // keep the old permissions, executable by its owner at least
	if err := fsys.Chmod(tmpName, mode); err != nil {
		return res, u.writeError(dir, err)
	}
	if err := u.replace(tmpName); err != nil {
		return res, err
	}
	committed = true
	syncDir(dir)
	res.Updated = true
	return res, nil
}

// replace moves the verified temp file over ExePath. On Windows a running
// .exe cannot be overwritten but can be renamed, so it is moved aside to
// <exe>.old first (removed on the next run by CleanupOld) and moved back if
// the second rename fails.
func (u *Updater) replace(tmpName string) error {
	fsys := u.fs()
	dir := filepath.Dir(u.ExePath)
	if u.GOOS != "windows" {
		if err := fsys.Rename(tmpName, u.ExePath); err != nil {
			return u.writeError(dir, err)
		}
		return nil
	}
	old := OldPath(u.ExePath)
	if err := fsys.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return u.writeError(dir, fmt.Errorf("cannot remove the leftover %s: %w", old, err))
	}
	if err := fsys.Rename(u.ExePath, old); err != nil {
		return u.writeError(dir, err)
	}
	if err := fsys.Rename(tmpName, u.ExePath); err != nil {
		if rerr := fsys.Rename(old, u.ExePath); rerr != nil {
			return &Error{Msg: fmt.Sprintf("cannot install the new km (%v) nor restore the old one from %s (%v)", err, old, rerr),
				Hint: "reinstall: " + reinstallCommand(u.GOOS)}
		}
		return u.writeError(dir, err)
	}
	// Usually fails while the old binary is still running; CleanupOld retries.
	fsys.Remove(old)
	return nil
}

// OldPath is where Windows keeps the replaced executable until the next run.
func OldPath(exe string) string { return exe + ".old" }

// CleanupOld removes the <exe>.old left by an update on Windows. It does
// nothing on other systems and ignores every error (the file may still be in
// use by another km process).
func CleanupOld(fsys FS, goos, exe string) {
	if goos != "windows" || exe == "" {
		return
	}
	if fsys == nil {
		fsys = OSFS{}
	}
	fsys.Remove(OldPath(exe))
}

func (u *Updater) writeError(dir string, err error) error {
	msg := fmt.Sprintf("cannot write to %s: %s; km was not changed", dir, describe(err))
	hint := "reinstall: " + reinstallCommand(u.GOOS)
	switch {
	case errors.Is(err, syscall.EROFS):
		hint = "reinstall into a writable directory: " + reinstallCommand(u.GOOS)
	case errors.Is(err, fs.ErrPermission):
		if u.GOOS == "windows" {
			hint = "run it from an elevated terminal, or reinstall: " + reinstallCommand(u.GOOS)
		} else {
			hint = "run 'sudo km update', or reinstall: " + reinstallCommand(u.GOOS)
		}
	}
	return &Error{Msg: msg, Hint: hint, Err: err}
}

func describe(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return err.Error()
}

func reinstallCommand(goos string) string {
	if goos == "windows" {
		return "irm " + DefaultBaseURL + "/install.ps1 | iex"
	}
	return "curl -sSL " + DefaultBaseURL + " | sh"
}

// parseChecksum reads the first line of a .sha256 file (`<hex>  <name>`,
// sha256sum format; "*name" and a bare hash are accepted too).
func parseChecksum(body []byte, asset string) (string, error) {
	line, _, _ := bufio.NewReader(strings.NewReader(string(body))).ReadLine()
	fields := strings.Fields(string(line))
	if len(fields) == 0 || len(fields) > 2 {
		return "", errors.New("not in sha256sum format (<hex>  <name>)")
	}
	sum := strings.ToLower(fields[0])
	if len(sum) != 64 {
		return "", fmt.Errorf("%q is not a SHA-256", fields[0])
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return "", fmt.Errorf("%q is not a SHA-256", fields[0])
	}
	if len(fields) == 2 {
		if name := strings.TrimPrefix(fields[1], "*"); name != asset {
			return "", fmt.Errorf("it is the checksum of %q, not of %q", name, asset)
		}
	}
	return sum, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
