//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/servicetest"
	"github.com/acme-payments/platform/internal/stacktest"
	"github.com/acme-payments/platform/internal/txqueue"
)

// exitedPid runs a process that exits at once and returns its pid, reaped:
// no process has it now (Linux hands pids out in turn, so none will soon).
func exitedPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("run true: %v", err)
	}
	return cmd.Process.Pid
}

func TestGoneFromThisHost(t *testing.T) {
	self, dead := os.Getpid(), exitedPid(t)
	gone := goneFromThisHost("box-1", self)
	tests := []struct {
		name string
		want bool
	}{
		{"box-1-" + strconv.Itoa(dead), true},
		{"box-1-" + strconv.Itoa(self), false},         // this connector
		{"box-1-1", false},                             // pid 1 runs
		{"other-" + strconv.Itoa(dead), false},         // another host's
		{"box-1-x" + strconv.Itoa(dead), false},        // not a pid
		{"box-1-0" + strconv.Itoa(dead), false},        // not as the default writes it
		{"box-1-0", false},                             // no such pid
		{"box-1-" + strconv.Itoa(-dead), false},        // nor this
		{"box-" + strconv.Itoa(dead), false},           // a host "box"
		{"box-1-" + strconv.Itoa(dead) + "-2", false},  // a CONSUMER_NAME of the operator's
		{"box-1-99999999999999999999999999999", false}, // out of range
	}
	for _, tt := range tests {
		if got := gone(tt.name); got != tt.want {
			t.Errorf("gone(%q): got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestGoneFromThisHostTakesAnotherUsersProcessAsAlive: to a connector that
// is not root, kill(pid, 0) on another user's process answers EPERM, not
// ESRCH: that process exists, so its consumer is not gone. The tests run as
// root, to whom kill never answers EPERM, so this one runs again as nobody,
// against pid 1 (root's init), and a pid no process has.
func TestGoneFromThisHostTakesAnotherUsersProcessAsAlive(t *testing.T) {
	check := func() string {
		dead := exitedPid(t)
		gone := goneFromThisHost("box-1", os.Getpid())
		return fmt.Sprintf("kill(1, 0): %v; gone(box-1-1): %v; gone(box-1-<exited>): %v",
			syscall.Kill(1, 0), gone("box-1-1"), gone("box-1-"+strconv.Itoa(dead)))
	}
	const mark = "judged as another user: "
	if stacktest.AsNobody() {
		fmt.Println(mark + check())
		return
	}
	got := ""
	if os.Geteuid() != 0 {
		got = check()
	} else {
		out := stacktest.RerunAsNobody(t, "", nil)
		for _, l := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(l, mark); ok {
				got = rest
			}
		}
		if got == "" {
			// The run as nobody judged nothing: a skip would hide it.
			t.Fatalf("no result line from the run as nobody:\n%s", out)
		}
	}
	if !strings.HasPrefix(got, "kill(1, 0): operation not permitted;") {
		t.Skipf("pid 1 is not another user's process here (%q)", got)
	}
	if want := "kill(1, 0): operation not permitted; gone(box-1-1): false; gone(box-1-<exited>): true"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestOnlyTheDefaultConsumerNameJudgesOthersGone: the test for gone
// consumers comes with the default CONSUMER_NAME, hostname-pid, whose
// scheme it knows; a name of the operator's gets none, so that such a
// connector removes no consumer but its own, at its stop.
func TestOnlyTheDefaultConsumerNameJudgesOthersGone(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Skipf("no hostname: %v", err)
	}
	dead := host + "-" + strconv.Itoa(exitedPid(t))
	for _, tt := range []struct {
		environ  []string
		wantGone bool
	}{
		{nil, true},
		{[]string{"CONSUMER_NAME=connector-a"}, false},
	} {
		cfg, err := parseConfig(append([]string{"REDIS_URL=redis://127.0.0.1:6379"}, tt.environ...))
		if err != nil {
			t.Fatalf("parseConfig(%q): %v", tt.environ, err)
		}
		if got := cfg.ConsumerGone != nil && cfg.ConsumerGone(dead); got != tt.wantGone {
			t.Errorf("with %q (consumer %s): %s judged gone: got %v, want %v", tt.environ, cfg.ConsumerName, dead, got, tt.wantGone)
		}
	}
}

// TestRunRemovesStoppedConnectorsFromTheGroup: with the default
// CONSUMER_NAME, hostname-pid, the connector removes from the consumer
// group the consumers of this host whose process is gone, the one killed
// with an entry pending once it has reclaimed and charged that entry, and
// keeps the others: a running process's, another host's, an operator's
// name. At its stop it leaves the group itself.
func TestRunRemovesStoppedConnectorsFromTheGroup(t *testing.T) {
	srv, rdb, q, res := redisWithOneQueued(t, txqueue.Transaction{UserID: 2, Amount: 42, Currency: "GBP"})
	ctx := context.Background()
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Skipf("no hostname: %v", err)
	}
	dead := strconv.Itoa(exitedPid(t))
	killed, stopped := host+"-"+dead, host+"-"+strconv.Itoa(exitedPid(t))
	kept := []string{host + "-1", "elsewhere-" + dead, "operators-name"}
	if err := rdb.XGroupCreateMkStream(ctx, txqueue.Stream, txqueue.Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: txqueue.Group, Consumer: killed, Streams: []string{txqueue.Stream, ">"}, Count: 1, Block: -1,
	}).Result()
	if err != nil || len(got) != 1 || len(got[0].Messages) != 1 {
		t.Fatalf("XREADGROUP as the killed connector: got %v, %v", got, err)
	}
	for _, name := range append([]string{stopped}, kept...) {
		if err := rdb.XGroupCreateConsumer(ctx, txqueue.Stream, txqueue.Group, name).Err(); err != nil {
			t.Fatal(err)
		}
	}
	consumers := func() []string {
		ks, err := rdb.XInfoConsumers(ctx, txqueue.Stream, txqueue.Group).Result()
		if err != nil {
			t.Fatalf("XINFO CONSUMERS: %v", err)
		}
		var names []string
		for _, k := range ks {
			names = append(names, k.Name)
		}
		slices.Sort(names)
		return names
	}

	svc := servicetest.Start(t, "psp-connector", run, "REDIS_URL="+srv.URL, "VISIBILITY_TIMEOUT=1s", "CLAIM_INTERVAL=100ms")
	self := host + "-" + strconv.Itoa(os.Getpid())
	want := slices.Sorted(slices.Values(append([]string{self}, kept...)))
	waitFor(t, "the stopped and the killed connector removed", func() bool {
		return slices.Equal(consumers(), want)
	})
	rec, err := q.Status(ctx, res.ID)
	if err != nil || rec.Status != txqueue.StatusProcessed {
		t.Errorf("the killed connector's entry: got %+v, %v; want processed", rec, err)
	}
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(kept)
	if names := consumers(); !slices.Equal(names, kept) {
		t.Errorf("consumers after the stop: got %q, want %q", names, kept)
	}
}
