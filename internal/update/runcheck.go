package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// RunVersion runs `path --version` and returns its standard output (at most
// 4 KiB). The context bounds the run; a child that keeps its pipes open is
// abandoned a second later.
func RunVersion(ctx context.Context, path string) (string, error) {
	cmd := exec.CommandContext(ctx, path, "--version")
	var out limitedBuffer
	cmd.Stdout = &out
	cmd.Env = append(os.Environ(), "KM_NO_AUTO_UPDATE=1")
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	return out.String(), err
}

type limitedBuffer struct{ bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - l.Len(); room > 0 {
		if len(p) > room {
			l.Buffer.Write(p[:room])
		} else {
			l.Buffer.Write(p)
		}
	}
	return len(p), nil
}

// runCheck requires the km at path to answer --version with the version
// line of version for this platform ("km <v> (<commit>, <date>, <os>/<arch>)").
func (u *Updater) runCheck(ctx context.Context, path, version string) error {
	run := u.Run
	if run == nil {
		run = RunVersion
	}
	limit := u.timeouts().Run
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out, err := run(ctx, path)
	fail := func(why string) error {
		return &Error{Msg: fmt.Sprintf("the downloaded km %s does not work here (%s); km was not changed", version, why),
			Hint: "report it: https://github.com/kilometers-ai/kilometers-cli/issues", Security: true}
	}
	if ctx.Err() != nil {
		return fail(fmt.Sprintf("no answer to --version within %s", secs(limit)))
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fail(fmt.Sprintf("--version: %v", ee))
		}
		return fail(describe(err))
	}
	line, _, _ := strings.Cut(out, "\n")
	line = strings.TrimSuffix(line, "\r")
	want := "km " + version + " ("
	suffix := ", " + u.GOOS + "/" + u.GOARCH + ")"
	if !strings.HasPrefix(line, want) || !strings.HasSuffix(line, suffix) {
		return fail(fmt.Sprintf("--version said %q, expected %s...%s", Clean(line, 80), want, suffix))
	}
	return nil
}
