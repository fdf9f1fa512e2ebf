package httpx

import (
	"context"
	"net/http"
	"time"
)

// Check is one named dependency check for /health, such as a Redis ping.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// CheckResult is one entry of the health response's "checks" map, in the style
// of the IETF "Health Check Response Format for HTTP APIs" draft.
type CheckResult struct {
	Status string `json:"status"`
	Time   string `json:"time"`
	Output string `json:"output,omitempty"`
}

// HealthResponse is the body of GET /health: "pass" with 200, or "fail" with
// 503 when any check fails.
type HealthResponse struct {
	Status string                   `json:"status"`
	Checks map[string][]CheckResult `json:"checks"`
}

// HealthTimeout bounds each check so a hung dependency cannot hang the probe.
const HealthTimeout = 500 * time.Millisecond

// HandleHealth runs every check on each request and reports the result. The
// services serve it twice: GET /health with what readiness needs, and
// GET /live with only what, failing, means the process must be restarted
// (the stack's watchdog restarts on anything but a 200 there).
func HandleHealth(checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp := HealthResponse{Status: "pass", Checks: map[string][]CheckResult{}}
		for _, c := range checks {
			ctx, cancel := context.WithTimeout(r.Context(), HealthTimeout)
			err := c.Run(ctx)
			cancel()
			res := CheckResult{Status: "pass", Time: time.Now().UTC().Format(time.RFC3339)}
			if err != nil {
				res.Status, res.Output = "fail", err.Error()
				resp.Status = "fail"
			}
			resp.Checks[c.Name] = []CheckResult{res}
		}
		status := http.StatusOK
		if resp.Status != "pass" {
			status = http.StatusServiceUnavailable
		}
		WriteJSON(w, status, resp)
	})
}
