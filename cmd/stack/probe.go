package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/acme-payments/platform/internal/httpx"
)

// probe is the readiness check process-compose.yaml runs for every process:
//
//	stack probe [--within 4s] [--status 200] http <url>  passes on an answer with one of the statuses
//	stack probe [...] http-unix <socket>:/<path>      the same, over a unix socket
//	stack probe [--within 4s] redis <socket>              passes on +PONG
//
// --status takes a comma-separated list: core-api's probe passes on 200 or
// 503, since its /health answers 503 while Redis is down, and whether
// core-api answers at all is what HAProxy's start and restart wait for
// (Redis has its own probe).
//
// It retries for up to --within (5 ms apart, backing off to 250 ms), because
// process-compose runs a probe once at process start and then only every
// period_seconds (at least 1 s): a probe that fails once would cost a second.
// The default, 4 s, is a second under process-compose.yaml's period of 5 s,
// so that a process that is not ready is retried nearly all the time and
// shows Ready soon after it is, while a ready one costs one probe process
// every 5 s.
// It stops early when its parent (process-compose) is gone. When it gives up,
// it reports what the last answered attempt said (say, a 503), not the
// deadline that cut a final attempt short.
func probe(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stdout)
	within := fs.Duration("within", 4*time.Second, "keep retrying for this long")
	statusList := fs.String("status", "200", "http: the statuses that pass, comma-separated")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() != 2 {
		return &exitError{code: 2, err: errors.New("usage: stack probe [--within 4s] [--status 200,...] http <url> | http-unix <socket>:/<path> | redis <socket>")}
	}
	pass := map[int]bool{}
	for _, f := range strings.Split(*statusList, ",") {
		code, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || code < 100 || code > 599 {
			return &exitError{code: 2, err: fmt.Errorf("--status %q: want HTTP statuses such as 200,503", *statusList)}
		}
		pass[code] = true
	}
	var check func(context.Context) error
	switch kind, target := fs.Arg(0), fs.Arg(1); kind {
	case "http":
		client := checkClient("")
		check = func(ctx context.Context) error { return checkHTTP(ctx, client, target, pass) }
	case "http-unix":
		client, url, err := unixHTTP(target)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		check = func(ctx context.Context) error { return checkHTTP(ctx, client, url, pass) }
	case "redis":
		check = func(ctx context.Context) error { return checkRedis(ctx, target) }
	default:
		return &exitError{code: 2, err: fmt.Errorf("probe kind %q: want http, http-unix or redis", kind)}
	}

	ctx, cancel := context.WithTimeout(ctx, *within)
	defer cancel()
	parent := os.Getppid()
	delay := 5 * time.Millisecond
	var last error // what the last attempt that the deadline did not cut short said
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, probeAttemptTimeout)
		err := check(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		if os.Getppid() != parent {
			return fmt.Errorf("parent exited; last error: %w", last)
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(delay):
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// unixHTTP reads "<socket>:/<path>" (the path after the last colon) and
// returns a client that connects to the unix socket, a new connection per
// request, and the URL to GET with it.
func unixHTTP(spec string) (*http.Client, string, error) {
	i := strings.LastIndex(spec, ":")
	if i <= 0 || !strings.HasPrefix(spec[i+1:], "/") {
		return nil, "", fmt.Errorf("%q: want <socket>:/<path>", spec)
	}
	socket, path := spec[:i], spec[i+1:]
	return checkClient(socket), "http://localhost" + path, nil
}

// checkClient is the HTTP client of the probes and the watchdog's checks:
// a new connection per request, so that a check also finds a listener
// that no longer accepts; over the unix socket when socket is set.
func checkClient(socket string) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	if socket != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
	}
	return &http.Client{Transport: tr}
}

// probeAttemptTimeout bounds one attempt. It is longer than a service's own
// bound on its health checks (httpx.HealthTimeout, 500 ms), so that a
// service whose dependency hangs (a stopped Redis) still gets its 503 to the
// probe: core-api's probe passes on that 503.
const probeAttemptTimeout = 2 * httpx.HealthTimeout

// statusError is checkHTTP's error for an answer with a status not in pass.
type statusError struct {
	url, status, body string
	code              int
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: %s: %s", e.url, e.status, e.body) }

// checkHTTP passes when GET url answers with a status in pass; otherwise
// its error is a *statusError.
func checkHTTP(ctx context.Context, client *http.Client, url string, pass map[int]bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if !pass[resp.StatusCode] {
		return &statusError{url: url, status: resp.Status, body: strings.TrimSpace(string(body)), code: resp.StatusCode}
	}
	return nil
}

// checkRedis sends PING over the unix socket and wants +PONG (a Redis still
// loading its AOF answers -LOADING, which is not ready).
func checkRedis(ctx context.Context, socket string) error {
	line, err := pingRedis(ctx, socket)
	if err != nil {
		return err
	}
	if line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// pingRedis sends PING over the unix socket and returns the first line of
// whatever Redis answers.
func pingRedis(ctx context.Context, socket string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read PING reply: %w", err)
	}
	return strings.TrimSpace(line), nil
}
