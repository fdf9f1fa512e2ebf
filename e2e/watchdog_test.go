package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWatchdogRestartsAHungCoreAPIUnderLoad stops core-api with SIGSTOP in
// the middle of a load through the router, as a deadlock would leave it:
// running, answering nothing. The watchdog (RESTART_HUNG_AFTER=3s here)
// sends it SIGQUIT and SIGCONT, process-compose starts it again, and the
// load goes on: every transaction the router acknowledged must be processed
// exactly once, those core-api had queued without answering included (the
// client's retry with the same Idempotency-Key is answered by a replay).
// With RESTART_HUNG_AFTER=0 (the watchdog only logs) core-api stayed
// stopped, and the test failed after 222 s: the load ran out of retries.
func TestWatchdogRestartsAHungCoreAPIUnderLoad(t *testing.T) {
	st := startFaultStack(t, stackOptions{env: map[string]string{
		"RESTART_HUNG_AFTER": "3s",
		"SHUTDOWN_GRACE":     "2s", // must be shorter (the launcher checks)
	}})
	tokens := newTokenSource(st)
	const n = 6_000
	var hungPid int
	var stoppedAt time.Time
	hang := atAccepted([]int64{n / 3}, func(int64) {
		hungPid = st.signal(t, "core-api", syscall.SIGSTOP)
		stoppedAt = time.Now()
	})
	res := st.runLoad(context.Background(), t, loadOptions{total: n, firstAmount: 1, tokens: tokens, progress: hang.progress})
	hang.wait(t, len(res.accepted))
	back := st.waitRunning(t, "core-api", hungPid, 30*time.Second)
	t.Logf("core-api pid %d stopped with SIGSTOP; a new one ready %s after the test began waiting, %s after the stop",
		hungPid, back.Round(time.Millisecond), time.Since(stoppedAt).Round(time.Millisecond))
	t.Logf("load through the router: %s", res.summary())
	for code, samples := range res.errorSamples {
		t.Logf("router answered %d, e.g. %s", code, strings.Join(samples, " | "))
	}
	o := verifyExactlyOnce(t, st, res, [2]int64{1, 1 + n}, 60*time.Second)

	wd := st.readLog(t, "watchdog")
	for _, want := range []string{
		fmt.Sprintf(`"msg":"restarting a hung process","service":"watchdog","process":"core-api","pid":%d`, hungPid),
		`"signal":"SIGQUIT"`,
		fmt.Sprintf(`"msg":"restarted by process-compose","service":"watchdog","process":"core-api","hung_pid":%d`, hungPid),
	} {
		if !strings.Contains(wd, want) {
			t.Errorf("watchdog log: no line with %s:\n%s", want, wd)
		}
	}
	if strings.Count(wd, `"msg":"restarting a hung process"`) != 1 {
		t.Errorf("watchdog log: want exactly one restart, core-api's:\n%s", wd)
	}
	if log := st.readLog(t, "core-api"); !strings.Contains(log, "SIGQUIT: quit") {
		t.Errorf("core-api log: no goroutine dump from SIGQUIT")
	}
	if res.nonJSON > 0 {
		t.Errorf("%d error answers were not JSON", res.nonJSON)
	}
	t.Logf("RESULT core-api hung (SIGSTOP) under load | %d tx, 32 workers | %s | router statuses %v | transport errors %v | %d answers lost and replayed",
		n, o, res.statuses, res.transport, res.answerLost)
}
