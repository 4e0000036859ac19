// Package update implements `km update`: resolve the published version, check
// the release's signed SHA256SUMS with the keys compiled into km, download
// this platform's binary from the immutable versioned path, verify its
// SHA-256, run it, and only then replace the running executable atomically.
package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kilometers-ai/kilometers-cli/internal/platform"
	"github.com/kilometers-ai/kilometers-cli/internal/semver"
	"github.com/kilometers-ai/kilometers-cli/internal/trust"
)

// DefaultBaseURL is the public CDN base; KM_BASE_URL overrides it.
const DefaultBaseURL = "https://get.kilometers.ai"

const (
	maxVersionBody  = 256
	maxChecksumBody = 4 << 10
	// MaxBinary is the largest km binary an update accepts (km is ~10 MB).
	MaxBinary = 200 << 20
	// TempPrefix starts the name of every temporary file an update makes
	// beside km (.km-update-<pid>-<random>); one whose process is gone, or
	// older than StaleAfter, is a killed run's and is removed.
	TempPrefix = ".km-update-"
	// StaleAfter: a live update touches its temp file at least every
	// Timeouts.Stall while downloading and runs it for at most Timeouts.Run.
	StaleAfter = 2 * time.Minute
)

// Updater holds everything an update depends on, so tests can point it at an
// httptest server, another OS and a fake filesystem.
type Updater struct {
	BaseURL  string       // CDN base, e.g. https://get.kilometers.ai
	Client   *http.Client // nil: NewClientWith(Timeouts)
	Timeouts *Timeouts    // nil: DefaultTimeouts
	Current  string       // version of the running build (main.Version)
	Keys     trust.Keys   // the release keys compiled into km
	GOOS     string       // selects the asset and the Windows replace path
	GOARCH   string
	ExePath  string                                                 // the file to replace (the running executable)
	FS       FS                                                     // nil: the real filesystem
	Run      func(ctx context.Context, path string) (string, error) // nil: RunVersion
	Now      func() time.Time                                       // nil: time.Now
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
	KeyID     string // the trusted key that signed the release
}

// Error is a failed update; Error() is the one line shown to the user, with
// no control characters in it whatever a server sent.
type Error struct {
	Msg    string
	Hint   string
	Err    error
	Status int // the HTTP status, when the error is one
	// Security: a signature or checksum refusal (a red flag, not an outage).
	Security bool
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return Clean(s, 600)
}

func (e *Error) Unwrap() error { return e.Err }

// Refused reports a refusal (signature, checksum, run-check, no keys) rather
// than an outage or a local failure.
func (e *Error) Refused() bool { return e.Security }

const redFlag = "this is a red flag, not an outage: km was not changed"

func (u *Updater) client() *http.Client {
	if u.Client != nil {
		return u.Client
	}
	return NewClientWith(u.timeouts())
}

func (u *Updater) timeouts() Timeouts {
	if u.Timeouts != nil {
		return *u.Timeouts
	}
	return DefaultTimeouts
}

func (u *Updater) fs() FS {
	if u.FS != nil {
		return u.FS
	}
	return OSFS{}
}

func (u *Updater) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

func (u *Updater) base() (*url.URL, error) {
	raw := u.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	b, err := url.Parse(raw)
	if err != nil || b.Host == "" {
		return nil, &Error{Msg: fmt.Sprintf("invalid KM_BASE_URL %s", semver.Quote(raw)), Hint: "expected e.g. " + DefaultBaseURL}
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

// Latest reads <base>/version: at most 256 bytes, one version of the
// release grammar (and nothing else) before it is used anywhere.
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
	v, err := semver.Parse(strings.TrimSuffix(strings.TrimSuffix(string(body), "\n"), "\r"))
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
	if len(u.Keys) == 0 {
		return Result{}, &Error{Msg: "refusing to update: this km was built without release keys, so it cannot verify a release",
			Hint: "reinstall: " + reinstallCommand(u.GOOS), Security: true}
	}
	res, install, err := u.target(ctx, version)
	if err != nil || !install {
		return res, err
	}
	return u.Install(ctx, res)
}

// target decides what Update installs, and whether anything.
func (u *Updater) target(ctx context.Context, version string) (Result, bool, error) {
	if version == "" {
		res, err := u.Check(ctx)
		return res, err == nil && res.Newer, err
	}
	v, err := semver.Parse(version)
	if err != nil {
		return Result{}, false, &Error{Msg: err.Error()}
	}
	res := Result{Current: u.Current, Target: v, Explicit: true, Newer: semver.CompareBuild(u.Current, v) < 0}
	if cur, err := semver.Parse(u.Current); err == nil && semver.Compare(cur, v) == 0 {
		return res, false, nil // already that version
	}
	return res, true, nil
}

// Install downloads, verifies, run-checks and installs res.Target.
func (u *Updater) Install(ctx context.Context, res Result) (Result, error) {
	if len(u.Keys) == 0 {
		return res, &Error{Msg: "refusing to update: this km was built without release keys", Hint: "reinstall: " + reinstallCommand(u.GOOS), Security: true}
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
	dir := filepath.Dir(u.ExePath)
	u.removeStale(dir)
	v := res.Target.String()
	binURL := join(b, "releases", v, asset)
	res.SourceURL = binURL

	// The signed checksums first: small, and a refusal saves the big download.
	want, keyID, err := u.verifiedSum(ctx, b, v, asset)
	if err != nil {
		return res, err
	}
	res.KeyID = keyID

	// The temp file next to the binary, before downloading: an unwritable
	// directory fails fast, and the final rename stays on one filesystem.
	tmp, err := fsys.CreateTemp(dir, u.tempPattern())
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
	h := sha256.New()
	if _, err := u.fetch(ctx, binURL, MaxBinary, io.MultiWriter(tmp, h)); err != nil {
		var ue *Error
		if errors.As(err, &ue) {
			return res, err
		}
		return res, u.writeError(dir, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		return res, &Error{Msg: fmt.Sprintf("checksum mismatch for %s: the signed SHA256SUMS says %s, the download is %s", binURL, want, got),
			Hint: redFlag, Security: true}
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
	if err := u.runCheck(ctx, tmpName, v); err != nil {
		return res, err
	}
	if err := u.replace(ctx, tmpName, v); err != nil {
		return res, err
	}
	committed = true
	syncDir(dir)
	res.Updated = true
	return res, nil
}

// verifiedSum fetches SHA256SUMS and SHA256SUMS.p256 of version, verifies
// the signature with the trusted keys, and returns asset's hash from it once
// the asset's own .sha256 agrees. No failure here falls back to anything.
func (u *Updater) verifiedSum(ctx context.Context, b *url.URL, version, asset string) (string, string, error) {
	sumsURL := join(b, "releases", version, "SHA256SUMS")
	sums, err := u.getSmall(ctx, sumsURL, trust.MaxSums)
	if err != nil {
		return "", "", err
	}
	sig, err := u.getSmall(ctx, sumsURL+".p256", trust.MaxSignature)
	if err != nil {
		var ue *Error
		if errors.As(err, &ue) && ue.Status == http.StatusNotFound {
			return "", "", &Error{Msg: fmt.Sprintf("refusing %s: the release is not signed (%s.p256 not found)", version, sumsURL), Hint: redFlag, Security: true}
		}
		return "", "", err
	}
	key, err := u.Keys.Verify(version, sums, sig)
	if err != nil {
		return "", "", &Error{Msg: fmt.Sprintf("refusing %s: the signature of its SHA256SUMS does not verify with any of the %d release keys this km trusts", version, len(u.Keys)),
			Hint: redFlag, Security: true}
	}
	list, err := trust.ParseSums(sums)
	if err != nil {
		return "", "", &Error{Msg: fmt.Sprintf("%s is signed but malformed: %v", sumsURL, err), Security: true}
	}
	want, ok := list[asset]
	if !ok {
		return "", "", &Error{Msg: fmt.Sprintf("%s does not list %s", sumsURL, asset), Security: true}
	}
	one, err := u.getSmall(ctx, join(b, "releases", version, asset+".sha256"), maxChecksumBody)
	if err != nil {
		return "", "", err
	}
	single, err := trust.ParseSingle(one, asset)
	if err != nil {
		return "", "", &Error{Msg: fmt.Sprintf("%s.sha256: %v", asset, err), Security: true}
	}
	if single != want {
		return "", "", &Error{Msg: fmt.Sprintf("%s.sha256 (%s) disagrees with the signed SHA256SUMS (%s)", asset, single, want), Hint: redFlag, Security: true}
	}
	return want, key.ID, nil
}

func (u *Updater) tempPattern() string {
	p := fmt.Sprintf("%s%d-*", TempPrefix, os.Getpid())
	if u.GOOS == "windows" {
		p += ".exe" // Windows runs only files with an executable extension
	}
	return p
}

// removeStale removes the temp files of a killed update: its process is
// gone, or the file is older than StaleAfter (a live update's is younger).
// Errors are ignored.
func (u *Updater) removeStale(dir string) {
	names, err := filepath.Glob(filepath.Join(dir, TempPrefix+"*"))
	if err != nil {
		return
	}
	fsys := u.fs()
	for _, name := range names {
		st, err := fsys.Stat(name)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if u.now().Sub(st.ModTime()) > StaleAfter || !ownerAlive(filepath.Base(name)) {
			fsys.Remove(name)
		}
	}
}

// ownerAlive: the process named in .km-update-<pid>-... still runs (true
// when the name holds no pid: then only the age decides).
func ownerAlive(base string) bool {
	rest := strings.TrimPrefix(base, TempPrefix)
	digits, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(digits)
	if !ok || err != nil || pid <= 0 {
		return true
	}
	return pid == os.Getpid() || processAlive(pid)
}

// replace moves the verified temp file over ExePath. On Windows a running
// .exe cannot be overwritten but can be renamed, so it is moved aside to
// <exe>.old first and kept there until the new km has answered at its final
// path; otherwise it is moved back. The .old of a running km is removed on
// the next run by CleanupOld.
func (u *Updater) replace(ctx context.Context, tmpName, version string) error {
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
	restore := func(cause error) error {
		if rerr := fsys.Rename(old, u.ExePath); rerr != nil {
			return &Error{Msg: fmt.Sprintf("cannot install the new km (%v) nor restore the old one from %s (%v)", cause, old, rerr),
				Hint: "reinstall: " + reinstallCommand(u.GOOS)}
		}
		return nil
	}
	if err := fsys.Rename(tmpName, u.ExePath); err != nil {
		if rerr := restore(err); rerr != nil {
			return rerr
		}
		return u.writeError(dir, err)
	}
	if err := u.runCheck(ctx, u.ExePath, version); err != nil {
		// Put the new one back at its temp name (removed by the caller).
		if merr := fsys.Rename(u.ExePath, tmpName); merr != nil {
			return &Error{Msg: fmt.Sprintf("%v, and it cannot be moved away (%v)", err, merr), Hint: "reinstall: " + reinstallCommand(u.GOOS)}
		}
		if rerr := restore(err); rerr != nil {
			return rerr
		}
		return err
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

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
