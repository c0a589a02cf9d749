package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// runMicro runs the backend's Go benchmarks and returns their result lines
// grouped under their package's line.
func runMicro(ctx context.Context, root string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "./backend/...")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go test -bench ./backend/...: %w\n%s", err, out)
	}
	var keep strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "pkg: ") || strings.HasPrefix(line, "Benchmark") {
			keep.WriteString(line + "\n")
		}
	}
	return keep.String(), nil
}
