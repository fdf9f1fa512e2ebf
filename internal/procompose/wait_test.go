package procompose

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// script returns a Poll that answers each call with the next snapshot (the
// last one repeats); a nil snapshot answers ErrNotRunning.
func script(snapshots ...[]Process) func(context.Context) ([]Process, error) {
	i := 0
	return func(context.Context) ([]Process, error) {
		s := snapshots[min(i, len(snapshots)-1)]
		i++
		if s == nil {
			return nil, ErrNotRunning
		}
		return s, nil
	}
}

func running(name string, ready bool) Process {
	p := Process{Name: name, Status: StatusRunning, HasReadyProbe: true, Health: "Not Ready", Pid: 100 + len(name)}
	if ready {
		p.Health = HealthReady
	}
	return p
}

func TestWaiterReportsEachProcessOnce(t *testing.T) {
	var events []string
	w := Waiter{
		Poll: script(
			nil, // API not up yet
			[]Process{running("redis", true), running("api", false), {Name: "router", Status: "Pending"}},
			[]Process{running("redis", true), running("api", true), {Name: "router", Status: "Pending"}},
			[]Process{running("redis", true), running("api", true), running("router", true)},
		),
		Want:     []string{"redis", "api", "router"},
		Start:    time.Now(),
		Interval: time.Millisecond,
		OnReady:  func(e ReadyEvent) { events = append(events, e.Name) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []string{"redis", "api", "router"}; !reflect.DeepEqual(events, want) {
		t.Errorf("ready events: got %v, want %v", events, want)
	}
}

func TestWaiterTimeoutNamesWhatIsNotReady(t *testing.T) {
	w := Waiter{
		Poll: script([]Process{
			running("redis", true),
			running("api", false),
			{Name: "worker", Status: "Restarting", ExitCode: 1, Restarts: 3},
		}),
		Want:     []string{"redis", "api", "worker", "router"},
		Start:    time.Now(),
		Interval: time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := w.Wait(ctx)
	var nr *NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("got %v, want a *NotReadyError", err)
	}
	got := map[string]string{}
	for _, p := range nr.Processes {
		got[p.Name] = Describe(p)
	}
	want := map[string]string{
		"api":    "running, readiness probe not passing",
		"worker": "restarting, exit code 1, 3 restarts",
		"router": "not started",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("not ready: got %v, want %v", got, want)
	}
	if nr.Cause != nil {
		t.Errorf("cause of a plain timeout: got %v, want none", nr.Cause)
	}
	for _, name := range []string{"api", "worker", "router"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q: want it to name %s", err, name)
		}
	}
}

func TestWaiterAbortEndsEarly(t *testing.T) {
	stopped := errors.New("process-compose exited")
	w := Waiter{
		Poll:     script([]Process{running("redis", false)}),
		Want:     []string{"redis"},
		Start:    time.Now(),
		Interval: time.Millisecond,
		Abort:    func() error { return stopped },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Returned by the abort, not by the deadline: the error says so.
	err := w.Wait(ctx)
	var nr *NotReadyError
	if !errors.As(err, &nr) || !errors.Is(err, stopped) {
		t.Fatalf("got %v, want a *NotReadyError caused by the abort", err)
	}
}

func TestReady(t *testing.T) {
	tests := []struct {
		p    Process
		want bool
	}{
		{Process{Status: StatusRunning, HasReadyProbe: true, Health: HealthReady}, true},
		{Process{Status: StatusRunning, HasReadyProbe: true, Health: "Not Ready"}, false},
		{Process{Status: StatusRunning, HasReadyProbe: false, Health: "-"}, true},
		{Process{Status: "Skipped"}, false},
		{Process{Status: "Completed"}, false},
		{Process{Status: "Pending", HasReadyProbe: true, Health: HealthReady}, false},
	}
	for _, tt := range tests {
		if got := tt.p.Ready(); got != tt.want {
			t.Errorf("%+v: got %v, want %v", tt.p, got, tt.want)
		}
	}
}

func TestWaiterGivesUpOnAProcessThatKeepsFailingAtStart(t *testing.T) {
	restarting := func(n int) Process {
		return Process{Name: "worker", Status: "Restarting", ExitCode: 1, Restarts: n}
	}
	runningAgain := running("worker", false)
	runningAgain.Restarts = 3
	tests := []struct {
		name      string
		snapshots [][]Process
		wantEarly bool
	}{
		{"three restarts, never ready: gives up", [][]Process{{running("redis", true), restarting(3)}}, true},
		{"running again after three restarts: still gives up", [][]Process{{running("redis", true), runningAgain}}, true},
		{"two restarts: waits on", [][]Process{{running("redis", true), restarting(2)}}, false},
		{"ready once, then restarting: waits on", [][]Process{{running("redis", true), running("worker", true), running("router", false)}, {running("redis", true), restarting(5), running("router", false)}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Waiter{
				Poll:        script(tt.snapshots...),
				Want:        []string{"redis", "worker", "router"},
				Start:       time.Now(),
				Interval:    time.Millisecond,
				MaxRestarts: 3,
			}
			// A wait which does not give up ends by the deadline: short, to
			// keep the test quick. One which gives up must do so at its first
			// poll, well before its deadline however slow the machine is.
			timeout := 200 * time.Millisecond
			if tt.wantEarly {
				timeout = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := w.Wait(ctx)
			var nr *NotReadyError
			if !errors.As(err, &nr) {
				t.Fatalf("got %v, want a *NotReadyError", err)
			}
			gaveUp := nr.Cause != nil && strings.Contains(nr.Cause.Error(), "worker exited and was restarted")
			if gaveUp != tt.wantEarly {
				t.Fatalf("gave up early: got %v (%v), want %v", gaveUp, err, tt.wantEarly)
			}
			if tt.wantEarly && ctx.Err() != nil {
				t.Errorf("gave up only at the deadline, want at the first poll that shows the restarts")
			}
		})
	}
}

// TestWaiterOnFailingStartReportsOnceAndWaitsOn: with OnFailingStart, a
// process failing at start is reported once, and the others' readiness is
// still reported afterwards.
func TestWaiterOnFailingStartReportsOnceAndWaitsOn(t *testing.T) {
	failing := Process{Name: "worker", Status: "Restarting", ExitCode: 1, Restarts: 3}
	var reports []string
	var ready []string
	// The wait ends when the test cancels it, once router is ready, not at
	// a deadline that a slow machine could reach before the third poll.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := Waiter{
		Poll: script(
			[]Process{running("redis", true), failing, running("router", false)},
			[]Process{running("redis", true), failing, running("router", false)},
			[]Process{running("redis", true), failing, running("router", true)},
		),
		Want:        []string{"redis", "worker", "router"},
		Start:       time.Now(),
		Interval:    time.Millisecond,
		MaxRestarts: 3,
		OnReady: func(e ReadyEvent) {
			ready = append(ready, e.Name)
			if e.Name == "router" {
				cancel()
			}
		},
		OnFailingStart: func(nr *NotReadyError) {
			reports = append(reports, nr.Error())
		},
	}
	err := w.Wait(ctx)
	var nr *NotReadyError
	if !errors.As(err, &nr) || ctx.Err() == nil {
		t.Fatalf("got %v, want the wait to go on until the test ends it", err)
	}
	if len(reports) != 1 || !strings.Contains(reports[0], "worker exited and was restarted 3 times") || !strings.Contains(reports[0], "router (running, readiness probe not passing)") {
		t.Errorf("reports: got %q, want one, naming worker's restarts and router not yet ready", reports)
	}
	if want := []string{"redis", "router"}; !reflect.DeepEqual(ready, want) {
		t.Errorf("ready events: got %v, want %v (router became ready after the report)", ready, want)
	}
}
