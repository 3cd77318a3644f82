// Package testkit holds helpers kiln's integration and end-to-end tests share.
package testkit

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcessAlive reports whether pid runs. A zombie counts as gone: it has been
// killed and only waits for a parent (which, for an orphan in a container, may
// never come) to reap it.
func ProcessAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// ReadPID reads a PID a build wrote to path; 0 when it is not there (yet).
func ReadPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid < 0 {
		return 0
	}
	return pid
}
