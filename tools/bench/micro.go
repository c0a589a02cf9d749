package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// microTimeout bounds each package's benchmarks, so that a benchmark that
// hangs fails instead of stalling the tool.
const microTimeout = "5m"

// runMicro runs the backend's Go benchmarks and returns their result lines
// grouped under their package's line, with the failures, if any, and an
// error when a package failed.
func runMicro(ctx context.Context, root string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-timeout", microTimeout, "./backend/...")
	cmd.Dir = root
	out, runErr := cmd.CombinedOutput()
	var keep strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, prefix := range []string{"pkg: ", "Benchmark", "FAIL", "panic: ", "--- FAIL"} {
			if strings.HasPrefix(line, prefix) {
				keep.WriteString(line + "\n")
				break
			}
		}
	}
	if runErr != nil {
		return keep.String(), fmt.Errorf("go test -bench ./backend/...: %w (see the FAIL lines)", runErr)
	}
	return keep.String(), nil
}
