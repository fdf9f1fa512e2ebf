package procompose

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ReadyEvent says that a process became ready, how long after the start of
// the wait, and its pid.
type ReadyEvent struct {
	Name  string
	After time.Duration
	Pid   int
}

// NotReadyError is returned when the wait ends before every process is ready.
// Processes holds the last known state of each process that was not ready
// (a process never reported has only its Name set).
type NotReadyError struct {
	Waited    time.Duration
	Processes []Process
	Cause     error
}

func (e *NotReadyError) Error() string {
	names := make([]string, len(e.Processes))
	for i, p := range e.Processes {
		names[i] = fmt.Sprintf("%s (%s)", p.Name, Describe(p))
	}
	msg := fmt.Sprintf("not ready after %s: %s", e.Waited.Round(time.Millisecond), strings.Join(names, ", "))
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

func (e *NotReadyError) Unwrap() error { return e.Cause }

// Describe says in a few words why a process is or is not ready.
func Describe(p Process) string {
	switch {
	case p.Status == "":
		return "not started"
	case p.Ready():
		return "ready"
	case p.Status == StatusRunning && p.Restarts > 0:
		return fmt.Sprintf("running, readiness probe not passing, %d restarts", p.Restarts)
	case p.Status == StatusRunning:
		return "running, readiness probe not passing"
	case p.Restarts > 0:
		return fmt.Sprintf("%s, exit code %d, %d restarts", strings.ToLower(p.Status), p.ExitCode, p.Restarts)
	case p.ExitCode != 0:
		return fmt.Sprintf("%s, exit code %d", strings.ToLower(p.Status), p.ExitCode)
	default:
		return strings.ToLower(p.Status)
	}
}

// Waiter polls process states until every wanted process is ready.
type Waiter struct {
	// Poll returns the current states; ErrNotRunning before the API is up
	// is expected and retried.
	Poll func(ctx context.Context) ([]Process, error)
	// Want names the processes that must all be ready at once.
	Want []string
	// Start is when the launch began; ReadyEvent.After counts from it.
	Start time.Time
	// Interval between polls (10 ms when zero).
	Interval time.Duration
	// OnReady, if set, is called once per process, the first time it is seen ready.
	OnReady func(ReadyEvent)
	// Abort, if set, is checked every poll; an error ends the wait early
	// (for example: process-compose itself exited).
	Abort func() error
	// MaxRestarts, when above zero, ends the wait early once a wanted
	// process that was never ready has restarted this many times: it fails
	// at start (a bad setting, say), and waiting longer would not help.
	MaxRestarts int
	// OnFailingStart, if set, is called instead, once per such process,
	// with an error that says so and names every process not ready; the
	// wait goes on (readiness of the others is still reported).
	OnFailingStart func(*NotReadyError)
}

// Wait returns nil once one poll shows every wanted process ready. When ctx
// ends first, or Abort reports an error, it returns a *NotReadyError naming
// each process that is not ready.
func (w Waiter) Wait(ctx context.Context) error {
	interval := w.Interval
	if interval <= 0 {
		interval = 10 * time.Millisecond
	}
	seen := map[string]bool{}
	failing := map[string]bool{} // reported to OnFailingStart
	last := map[string]Process{}
	var lastErr error
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		procs, err := w.Poll(ctx)
		if err != nil {
			if !errors.Is(err, ErrNotRunning) && ctx.Err() == nil {
				lastErr = err
			}
		} else {
			lastErr = nil
			all := true
			for _, p := range procs {
				last[p.Name] = p
			}
			for _, name := range w.Want {
				p, ok := last[name]
				if !ok || !p.Ready() {
					all = false
					continue
				}
				if !seen[name] {
					seen[name] = true
					if w.OnReady != nil {
						w.OnReady(ReadyEvent{Name: name, After: time.Since(w.Start), Pid: p.Pid})
					}
				}
			}
			if all {
				return nil
			}
		}
		var cause error
		if w.Abort != nil {
			cause = w.Abort()
		}
		if cause == nil && w.MaxRestarts > 0 {
			if name, err := w.crashLooping(last, seen, failing); err != nil {
				if w.OnFailingStart == nil {
					cause = err
				} else {
					failing[name] = true
					w.OnFailingStart(w.notReady(last, err))
				}
			}
		}
		if cause == nil {
			select {
			case <-ctx.Done():
				cause = lastErr
				if cause == nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
					cause = ctx.Err()
				}
			case <-tick.C:
				continue
			}
		}
		return w.notReady(last, cause)
	}
}

// notReady names each wanted process that the last states show not ready.
func (w Waiter) notReady(last map[string]Process, cause error) *NotReadyError {
	nr := &NotReadyError{Waited: time.Since(w.Start), Cause: cause}
	for _, name := range w.Want {
		p, ok := last[name]
		if !ok {
			p = Process{Name: name}
		}
		if !p.Ready() {
			nr.Processes = append(nr.Processes, p)
		}
	}
	return nr
}

// crashLooping names the first wanted process, never seen ready nor already
// reported, that has restarted MaxRestarts times or more; "" and nil when
// there is none.
func (w Waiter) crashLooping(last map[string]Process, seen, reported map[string]bool) (string, error) {
	for _, name := range w.Want {
		if p := last[name]; !seen[name] && !reported[name] && p.Restarts >= w.MaxRestarts {
			return name, fmt.Errorf("%s exited and was restarted %d times without becoming ready: it fails at start, so waiting longer would not help", name, p.Restarts)
		}
	}
	return "", nil
}
