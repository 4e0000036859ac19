package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Timeouts bound every network wait of an update (issue 13): a source that
// stops answering is down, not slow.
type Timeouts struct {
	Connect time.Duration // TCP connect, and the TLS handshake
	Header  time.Duration // from the request sent to the response headers
	Stall   time.Duration // no byte of the body for this long
	Base    time.Duration // overall cap of one request: Base + size / MinRate
	MinRate int64         // bytes per second the overall cap allows beyond Base
	Run     time.Duration // the downloaded km must answer --version within this
}

// DefaultTimeouts are the numbers the README states.
var DefaultTimeouts = Timeouts{
	Connect: 10 * time.Second,
	Header:  15 * time.Second,
	Stall:   20 * time.Second,
	Base:    30 * time.Second,
	MinRate: 64 << 10,
	Run:     10 * time.Second,
}

// MaxRedirects is how many redirects a download may follow.
const MaxRedirects = 3

// NewClient is an HTTP client with the default timeouts.
func NewClient() *http.Client { return NewClientWith(DefaultTimeouts) }

// NewClientWith is an HTTP client whose connect and header waits are bounded
// and whose redirects obey the same https-or-loopback rule as the base URL,
// at most MaxRedirects of them. The body's waits are bounded per request by
// fetch (stall and overall caps).
func NewClientWith(t Timeouts) *http.Client {
	dialer := &net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            dialer.DialContext,
			TLSHandshakeTimeout:    t.Connect,
			ResponseHeaderTimeout:  t.Header,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 64 << 10,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				return fmt.Errorf("more than %d redirects", MaxRedirects)
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

var (
	errStalled = errors.New("stalled")
	errTooSlow = errors.New("too slow")
)

func secs(d time.Duration) string {
	if d%time.Second != 0 {
		return d.String()
	}
	return fmt.Sprintf("%d s", int(d/time.Second))
}

// fetch GETs target into w, at most limit bytes, with the connect, header,
// stall and overall bounds of u.Timeouts. It returns the number of bytes written.
func (u *Updater) fetch(ctx context.Context, target string, limit int64, w io.Writer) (int64, error) {
	t := u.timeouts()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	overall := time.AfterFunc(t.Base, func() { cancel(errTooSlow) })
	defer overall.Stop()
	capFor := t.Base

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, &Error{Msg: fmt.Sprintf("bad URL %s: %v", target, err)}
	}
	req.Header.Set("User-Agent", "km/"+u.Current)
	resp, err := u.client().Do(req)
	if err != nil {
		return 0, u.netError(ctx, target, capFor, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound {
			return 0, &Error{Msg: fmt.Sprintf("%s not found (HTTP 404)", target), Status: resp.StatusCode}
		}
		return 0, &Error{Msg: fmt.Sprintf("download of %s failed: HTTP %d %s", target, resp.StatusCode, http.StatusText(resp.StatusCode)), Status: resp.StatusCode}
	}
	if resp.ContentLength > limit {
		return 0, &Error{Msg: fmt.Sprintf("%s is %d bytes, more than the %d allowed: not a km release file", target, resp.ContentLength, limit)}
	}
	size := limit
	if resp.ContentLength >= 0 {
		size = resp.ContentLength
	}
	if t.MinRate > 0 {
		capFor = t.Base + time.Duration(size/t.MinRate)*time.Second
		overall.Reset(capFor - time.Since(start))
	}
	stall := time.AfterFunc(t.Stall, func() { cancel(errStalled) })
	defer stall.Stop()
	body := &progressReader{r: io.LimitReader(resp.Body, limit+1), tick: func() { stall.Reset(t.Stall) }}
	n, err := io.Copy(w, body)
	if err != nil {
		if body.readErr {
			return n, u.netError(ctx, target, capFor, err)
		}
		return n, err // the writer's: the caller knows what it writes to
	}
	if n > limit {
		return n, &Error{Msg: fmt.Sprintf("%s is larger than %d bytes: not a km release file", target, limit)}
	}
	return n, nil
}

// progressReader calls tick after every read that returned data.
type progressReader struct {
	r       io.Reader
	tick    func()
	readErr bool
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.tick()
	}
	if err != nil && err != io.EOF {
		p.readErr = true
	}
	return n, err
}

func (u *Updater) netError(ctx context.Context, target string, capFor time.Duration, err error) error {
	t := u.timeouts()
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errStalled):
		return &Error{Msg: fmt.Sprintf("download of %s stalled (no data for %s)", target, secs(t.Stall)), Err: err}
	case errors.Is(cause, errTooSlow):
		return &Error{Msg: fmt.Sprintf("download of %s took longer than %s", target, secs(capFor)), Err: err}
	case errors.As(err, &ne) && ne.Timeout():
		if strings.Contains(err.Error(), "awaiting response headers") {
			return &Error{Msg: fmt.Sprintf("no answer from %s within %s", target, secs(t.Header)), Err: err}
		}
		return &Error{Msg: fmt.Sprintf("cannot download %s: no connection within %s", target, secs(t.Connect)), Err: err}
	}
	// The transport's words may quote what the server sent: a short excerpt only.
	return &Error{Msg: fmt.Sprintf("cannot download %s: %s", target, Clean(err.Error(), 120)), Err: err}
}

// getSmall fetches a small file whole.
func (u *Updater) getSmall(ctx context.Context, target string, limit int64) ([]byte, error) {
	var b strings.Builder
	if _, err := u.fetch(ctx, target, limit, &b); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// Clean makes s safe for one line on a terminal: control characters
// (C0, DEL, C1, so no escape sequence) and invalid UTF-8 become '?', and it
// is cut after max bytes.
func Clean(s string, max int) string {
	var b strings.Builder
	for i, r := range s {
		if i >= max {
			b.WriteString("...")
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
