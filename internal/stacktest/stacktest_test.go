package stacktest

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortsAreBelowTheEphemeralRange: FreePorts gives distinct ports
// that a listener can take, none from the range the kernel hands to client
// connections, where a test running beside it could hold one.
func TestFreePortsAreBelowTheEphemeralRange(t *testing.T) {
	ephemeral := firstEphemeralPort()
	if ephemeral < 11000 {
		t.Skipf("the ephemeral range starts at %d: FreePorts takes any port there", ephemeral)
	}
	ports := FreePorts(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if p < 10000 || p >= ephemeral || seen[p] {
			t.Errorf("port %d of %v: want distinct ports from 10000 to %d", p, ports, ephemeral-1)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("listen on port %d: %v", p, err)
			continue
		}
		ln.Close()
	}
}
