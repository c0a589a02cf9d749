package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ripple-rt/ripple/backend/config"
	"github.com/ripple-rt/ripple/backend/server"
)

// gateway is a running Ripple gateway serving one benchmark channel.
type gateway interface {
	// wsURL is the gateway's WebSocket endpoint.
	wsURL() string
	// usage reads the gateway process's CPU time and memory; ok is false
	// when the gateway shares the tool's process.
	usage() (u procUsage, ok bool, err error)
	// metric reads one sample of the gateway's /metrics.
	metric(name string) (float64, error)
	stop() error
}

// procUsage is what /proc says about a process.
type procUsage struct {
	cpu     time.Duration // user + system
	rss     int64         // VmRSS, bytes
	peakRSS int64         // VmHWM, bytes
}

// buildRipple builds ./backend/cmd/ripple from the repository at root into
// dir and returns the binary's path.
func buildRipple(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "ripple")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./backend/cmd/ripple")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./backend/cmd/ripple: %w\n%s", err, out)
	}
	return bin, nil
}

// repoRoot finds the repository root: the nearest folder above the working
// directory that holds go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory: run from the Ripple repository")
		}
		dir = parent
	}
}

// gatewaySettings is the environment the benchmark's gateway runs with:
// the defaults, except no authentication, quiet logs, and no cap on
// connections per client IP (every subscriber comes from this machine).
func gatewaySettings(dbURL, channel, addr string) map[string]string {
	return map[string]string{
		"DATABASE_URL":            dbURL,
		"PG_CHANNELS":             channel,
		"RIPPLE_ADDR":             addr,
		"RIPPLE_AUTH":             "none",
		"RIPPLE_LOG_LEVEL":        "warn",
		"RIPPLE_MAX_CONNS_PER_IP": "1000000",
	}
}

// processGateway is `ripple serve` running as a child process, so that its
// CPU time and memory are its own.
type processGateway struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	stderr *tailBuffer
}

// startProcessGateway runs `bin serve` against dbURL for channel and waits
// until /readyz answers.
func startProcessGateway(ctx context.Context, bin, dbURL, channel string) (*processGateway, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "serve")
	cmd.Env = os.Environ()
	for k, v := range gatewaySettings(dbURL, channel, addr) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	g := &processGateway{cmd: cmd, addr: addr, exited: make(chan struct{}), stderr: &tailBuffer{max: 8 << 10}}
	cmd.Stdout, cmd.Stderr = g.stderr, g.stderr
	// The gateway dies with the tool, whatever happens to the tool.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	go func() {
		cmd.Wait()
		close(g.exited)
	}()
	if err := waitReady(ctx, "http://"+addr+"/readyz", g.exited); err != nil {
		g.stop()
		return nil, fmt.Errorf("gateway did not become ready: %w\n%s", err, g.stderr)
	}
	return g, nil
}

func (g *processGateway) wsURL() string { return "ws://" + g.addr + "/ws" }

func (g *processGateway) usage() (procUsage, bool, error) {
	u, err := readProcUsage(g.cmd.Process.Pid)
	return u, true, err
}

func (g *processGateway) metric(name string) (float64, error) { return scrapeMetric(g.addr, name) }

// stop sends SIGTERM and waits for a graceful exit, killing the gateway
// after 15 s.
func (g *processGateway) stop() error {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
		return nil
	case <-time.After(15 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
		return fmt.Errorf("gateway did not stop within 15s of SIGTERM\n%s", g.stderr)
	}
}

// inProcessGateway runs the gateway inside the tool (server.Start), so that
// a CPU profile of the tool shows the gateway's code.
type inProcessGateway struct{ srv *server.Server }

func startInProcessGateway(ctx context.Context, dbURL, channel string) (*inProcessGateway, error) {
	env := gatewaySettings(dbURL, channel, "127.0.0.1:0")
	// No flags: the settings come from env alone.
	cfg, err := config.Load(flag.NewFlagSet("ripple", flag.ContinueOnError), func(k string) string { return env[k] }, true)
	if err != nil {
		return nil, err
	}
	srv, err := server.Start(ctx, cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("start the gateway in-process: %w", err)
	}
	return &inProcessGateway{srv: srv}, nil
}

func (g *inProcessGateway) wsURL() string                   { return g.srv.WebSocketURL() }
func (g *inProcessGateway) usage() (procUsage, bool, error) { return procUsage{}, false, nil }
func (g *inProcessGateway) metric(name string) (float64, error) {
	return scrapeMetric(g.srv.Addr(), name)
}
func (g *inProcessGateway) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return g.srv.Close(ctx)
}

// readProcUsage reads CPU time from /proc/pid/stat and memory from
// /proc/pid/status.
func readProcUsage(pid int) (procUsage, error) {
	var u procUsage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	if u.cpu, err = parseStatCPU(stat); err != nil {
		return u, err
	}
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	defer status.Close()
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			u.rss = kb << 10
		case "VmHWM":
			u.peakRSS = kb << 10
		}
	}
	return u, sc.Err()
}

// clockTicks is USER_HZ, the unit of /proc/pid/stat's times: 100 on Linux.
const clockTicks = 100

// scrapeMetric reads one unlabelled sample from the gateway's /metrics.
func scrapeMetric(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == name {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("scrape /metrics: %w", err)
	}
	return 0, fmt.Errorf("metric %s not found in /metrics", name)
}

func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("the gateway exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
