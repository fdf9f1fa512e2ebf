// Package procompose talks to a running process-compose over its REST API on
// a unix socket (GET /processes, POST /project/stop, GET /live), the subset
// that is the same in v1.64.1 and current releases, and waits for processes
// to become ready.
package procompose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"sort"
	"time"
)

// Process is one process's state as process-compose reports it.
type Process struct {
	Name          string        `json:"name"`
	Status        string        `json:"status"`
	Health        string        `json:"is_ready"`
	HasReadyProbe bool          `json:"has_ready_probe"`
	Restarts      int           `json:"restarts"`
	ExitCode      int           `json:"exit_code"`
	Pid           int           `json:"pid"`
	IsRunning     bool          `json:"is_running"`
	Age           time.Duration `json:"age"`
}

// Statuses process-compose reports that matter here.
const (
	StatusRunning     = "Running"
	StatusTerminating = "Terminating" // being stopped: its process still runs
	HealthReady       = "Ready"
)

// Ready says whether the process is running and, when it has a readiness
// probe, passed it. Unlike process-compose's own is-ready, a skipped, completed
// or disabled process is not ready: every process of the stack must run.
func (p Process) Ready() bool {
	if p.Status != StatusRunning {
		return false
	}
	return !p.HasReadyProbe || p.Health == HealthReady
}

// Client calls one process-compose's API over its unix socket.
type Client struct {
	socket string
	http   *http.Client
	// liveTimeout bounds Live: a stopped or stuck process-compose still has
	// its socket bound, so the kernel accepts the connection and nobody
	// answers.
	liveTimeout time.Duration
}

// NewClient returns a client for the API listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: 5 * time.Second,
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr}, liveTimeout: 2 * time.Second}
}

// Socket is the path the client connects to.
func (c *Client) Socket() string { return c.socket }

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// ErrNotRunning means nothing answers on the socket.
var ErrNotRunning = errors.New("process-compose is not running")

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://process-compose"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// A socket this user may not reach (a state dir of another
		// user's) says nothing about whether process-compose runs.
		if ctx.Err() == nil && isDialError(err) && !errors.Is(err, fs.ErrPermission) {
			return ErrNotRunning
		}
		return fmt.Errorf("process-compose %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("process-compose %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("process-compose %s %s: %s: %s", method, path, resp.Status, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("process-compose %s %s: decode: %w", method, path, err)
	}
	return nil
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ClosedUnanswered reports whether err is a connection to process-compose
// made and then lost before any answer (reset; closed at its end, or
// before the request went out, which Go's client calls "server closed idle
// connection"), not a timeout: what a process-compose killed as it was
// asked does, or anything else that lets a connection in and drops it.
// Whether process-compose is gone, its pid tells.
func ClosedUnanswered(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) && !ue.Timeout() && !isDialError(err) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, fs.ErrPermission)
}

// Alive reports whether process-compose answers on the socket (see Live).
func (c *Client) Alive(ctx context.Context) bool {
	return c.Live(ctx) == nil
}

// Live asks process-compose whether it is alive, waiting at most 2 s for
// the answer. It returns nil when process-compose answers, ErrNotRunning
// when nothing listens on the socket, and otherwise why no answer came: a
// process-compose that is stopped (SIGSTOP) or stuck still has its socket
// bound, so the connection is accepted and times out.
func (c *Client) Live(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.liveTimeout)
	defer cancel()
	return c.do(ctx, http.MethodGet, "/live", nil)
}

// Processes returns every process's state, sorted by name.
func (c *Client) Processes(ctx context.Context) ([]Process, error) {
	var resp struct {
		Data []Process `json:"data"`
	}
	if err := c.do(ctx, http.MethodGet, "/processes", &resp); err != nil {
		return nil, err
	}
	sort.Slice(resp.Data, func(i, j int) bool { return resp.Data[i].Name < resp.Data[j].Name })
	return resp.Data, nil
}

// ShutDown asks process-compose to stop every process (in reverse dependency
// order when it runs with --ordered-shutdown) and exit. process-compose
// answers once the processes are stopped, or not at all if it exits first,
// so a connection closed mid-answer counts as success.
func (c *Client) ShutDown(ctx context.Context) error {
	err := c.do(ctx, http.MethodPost, "/project/stop", nil)
	if err == nil || errors.Is(err, ErrNotRunning) {
		return err
	}
	if ctx.Err() != nil {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return err
}
