package devserver

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortsAvoidEphemeralRange checks the property the e2e flake came from:
// ports are distinct, bindable, and below the range the kernel hands to
// outgoing connections.
func TestFreePortsAvoidEphemeralRange(t *testing.T) {
	ports, err := FreePorts("127.0.0.1", 20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p < minPort || p >= ephemeralLow() {
			t.Errorf("port %d is outside [%d, %d)", p, minPort, ephemeralLow())
		}
		if seen[p] {
			t.Errorf("port %d returned twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d is not free: %v", p, err)
			continue
		}
		l.Close()
	}
}
