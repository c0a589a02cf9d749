// Command bench is Ripple's load benchmark. It starts a throwaway Postgres
// and the gateway (`ripple serve`, built from this repository, as a
// separate process so that its CPU time and memory are its own), opens
// subscribers with github.com/coder/websocket, writes rows that carry
// their send time, and reports per scenario the latency from send to
// client (p50/p95/p99/max), deliveries expected and received, duplicates,
// seq breaks, deliveries per second, and the gateway's CPU time and peak
// RSS. A raw pgx LISTEN client on the same channel gives the floor. It also
// measures the trigger's cost on single-row inserts, runs the backend's Go
// micro-benchmarks, and writes everything to BENCHMARKS.md.
//
// Usage:
//
//	go run ./tools/bench [--scenario latency,fanout,idle,churn] [--quick] [--out BENCHMARKS.md]
//	go run ./tools/bench --profile cpu.pprof   # fanout against an in-process gateway, CPU profile
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ripple-rt/ripple/backend/devdb"
	"github.com/ripple-rt/ripple/schema"
)

// allScenarios are the scenarios in the order they run.
var allScenarios = []string{"latency", "fanout", "idle", "churn"}

// options are the tool's settings (its flags).
type options struct {
	scenarios []string
	quick     bool
	out       string // BENCHMARKS.md path; empty writes none
	profile   string // CPU profile path: run fanout in-process instead
	heap      string // heap profile path: run idle in-process instead
	writePath bool
	micro     bool
	ripple    string // prebuilt ripple binary; empty builds one
	command   string // the command line, for the report
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err == nil {
		_, err = run(ctx, opts, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarios := fs.String("scenario", strings.Join(allScenarios, ","), "comma list of scenarios to run: "+strings.Join(allScenarios, ", "))
	quick := fs.Bool("quick", false, "shrink every scenario for a smoke run (seconds, not minutes); skips the Go micro-benchmarks unless --micro is given")
	out := fs.String("out", "BENCHMARKS.md", "write the report here, relative to the repository root; empty writes none")
	profile := fs.String("profile", "", "run one streaming scenario (fanout unless --scenario says otherwise) against a gateway inside this process, and write a CPU profile of its stream phases to this file")
	heap := fs.String("heap-profile", "", "run only idle, against a gateway inside this process, and write a heap profile to this file (after a GC, once every connection has subscribed)")
	writePath := fs.Bool("write-path", true, "measure single-row inserts per second with and without the trigger")
	micro := fs.Bool("micro", true, "run the backend's Go micro-benchmarks (go test -bench . -benchmem ./backend/...)")
	ripple := fs.String("ripple", "", "use this ripple binary instead of building ./backend/cmd/ripple")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./tools/bench [flags]\n\n"+
			"Load benchmark of the Ripple gateway on a throwaway Postgres (loopback only).\n"+
			"Scenarios: latency (100 and 400 subscribers x 200 changes/s), fanout (1,000 subscribers,\n"+
			"2,000 rows as fast as they commit), idle (10,000 idle subscribed connections, then one change),\n"+
			"churn (10%% of subscribers vanish mid-stream). Writes BENCHMARKS.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	o := options{quick: *quick, out: *out, profile: *profile, heap: *heap, writePath: *writePath, micro: *micro, ripple: *ripple,
		command: commandLine(args)}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if o.quick && !explicit["micro"] {
		o.micro = false
	}
	for _, s := range strings.Split(*scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			return options{}, fmt.Errorf("--scenario: unknown scenario %q (want some of %s)", s, strings.Join(allScenarios, ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	switch {
	case o.profile != "" && o.heap != "":
		return options{}, errors.New("--profile and --heap-profile each run their own scenario: give one of them")
	case o.profile != "":
		o.writePath, o.micro, o.out = false, false, ""
		if !explicit["scenario"] {
			o.scenarios = []string{"fanout"}
		}
		if len(o.scenarios) != 1 || o.scenarios[0] == "idle" {
			return options{}, errors.New("--profile profiles one streaming scenario: give --scenario latency, fanout or churn (default fanout)")
		}
	case o.heap != "":
		o.scenarios, o.writePath, o.micro, o.out = []string{"idle"}, false, false, ""
	}
	return o, nil
}

// commandLine is how the tool was run, for the report.
func commandLine(args []string) string {
	parts := []string{"go run ./tools/bench"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// bench holds what every scenario uses.
type bench struct {
	opts      options
	root      string
	pg        *devdb.Postgres
	pool      *pgxpool.Pool
	bin       string // ripple binary; empty runs the gateway in-process
	http      *http.Client
	log       io.Writer
	inProcess bool
	// onStreamStart runs when a stream's first row is about to be written
	// (the profile mode starts the CPU profile there).
	onStreamStart func()
	// onIdleConnected runs once every idle subscriber has its ack (the heap
	// profile mode writes its profile there).
	onIdleConnected func()
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

func (b *bench) startGateway(ctx context.Context, channel string) (gateway, error) {
	if b.inProcess {
		return startInProcessGateway(ctx, b.pg.URL, channel)
	}
	return startProcessGateway(ctx, b.bin, b.pg.URL, channel)
}

// run runs the benchmark and returns its report; it writes the report's
// markdown to stdout and, with opts.out, to that file.
func run(ctx context.Context, opts options, stdout, stderr io.Writer) (*report, error) {
	if err := raiseFileLimit(); err != nil {
		return nil, err
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	b := &bench{opts: opts, root: root, http: newHTTPClient(), log: stderr,
		inProcess: opts.profile != "" || opts.heap != ""}
	tmp, err := os.MkdirTemp("", "ripple-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if !b.inProcess {
		if b.bin = opts.ripple; b.bin == "" {
			b.logf("building ./backend/cmd/ripple")
			if b.bin, err = buildRipple(ctx, root, tmp); err != nil {
				return nil, err
			}
		}
	}
	b.logf("starting a throwaway Postgres")
	if b.pg, err = devdb.Start(ctx, devdb.Options{}); err != nil {
		return nil, err
	}
	defer b.pg.Stop()
	if b.pool, err = pgxpool.New(ctx, b.pg.URL); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", b.pg.URL, err)
	}
	defer b.pool.Close()
	if err := schema.Apply(ctx, b.pool); err != nil {
		return nil, err
	}

	rep := &report{command: opts.command, quick: opts.quick, started: time.Now().UTC()}
	if rep.machine, err = b.machine(ctx); err != nil {
		return nil, err
	}
	if rep.background, err = backgroundLoad(ctx, opts.quick); err != nil {
		return nil, err
	}
	if rep.background > 0.2 {
		b.logf("warning: the machine is already busy (%.0f%% of one core) before the benchmark starts: the numbers will be noisy", 100*rep.background)
	}
	if opts.profile != "" {
		if err := b.profileStream(ctx, rep); err != nil {
			return nil, err
		}
		return rep, nil
	}
	if opts.heap != "" {
		if err := b.profileIdle(ctx, rep); err != nil {
			return nil, err
		}
		return rep, nil
	}
	for _, name := range opts.scenarios {
		b.logf("scenario %s", name)
		sr, err := b.scenario(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", name, err)
		}
		rep.scenarios = append(rep.scenarios, sr)
	}
	if opts.writePath {
		b.logf("write path: inserts with and without the trigger")
		if rep.writePath, err = b.measureWritePath(ctx); err != nil {
			return nil, err
		}
	}
	if opts.micro {
		b.logf("Go micro-benchmarks: go test -run '^$' -bench . -benchmem -timeout %s ./backend/...", microTimeout)
		if rep.micro, err = runMicro(ctx, root); err != nil {
			// The scenarios' numbers are worth keeping all the same.
			b.logf("%v", err)
			rep.micro += err.Error() + "\n"
		}
	}
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if opts.out != "" {
		path := opts.out
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
			return nil, fmt.Errorf("write report: %w", err)
		}
		b.logf("wrote %s", path)
	}
	return rep, nil
}

// scenario runs one named scenario at the size --quick asks for.
func (b *bench) scenario(ctx context.Context, name string) (scenarioResults, error) {
	q := b.opts.quick
	pick := func(full, quick int) int {
		if q {
			return quick
		}
		return full
	}
	sr := scenarioResults{name: name}
	var runs []stream
	switch name {
	case "latency":
		small, large, rows := pick(100, 20), pick(400, 60), pick(1000, 200)
		for _, subs := range []int{small, large} {
			runs = append(runs, stream{name: fmt.Sprintf("latency-%d", subs), subs: subs, rate: 200, rows: rows})
		}
		runs = append(runs, stream{name: "latency-floor", rate: 200, rows: rows, floorOnly: true})
		sr.desc = fmt.Sprintf("%d, then %d subscribers on one channel while one writer inserts %d rows at 200 rows/s (paced); "+
			"then the same writes with only the LISTEN client and no gateway (latency-floor), the floor of the targets.", small, large, rows)
	case "fanout":
		s := stream{name: "fanout", subs: pick(1000, 100), rows: pick(2000, 300), writers: 4}
		runs = append(runs, s)
		sr.desc = fmt.Sprintf("%d subscribers on one channel; %d writer connections insert %d rows as fast as they commit.", s.subs, s.writers, s.rows)
	case "churn":
		s := stream{name: "churn", subs: pick(200, 40), rate: 200, rows: pick(1000, 300), pad: 2000, vanish: 0.1}
		runs = append(runs, s)
		sr.desc = fmt.Sprintf("%d subscribers, %d rows at 200 rows/s, each padded with %d bytes; after a third of the rows, "+
			"10%% of the subscribers vanish: half close their socket at once, half stop reading and stay connected "+
			"(their sockets have a %d-byte receive buffer, so the gateway's writes to them block, as to a client whose network went away). "+
			"The table counts the survivors, who must get everything.", s.subs, s.rows, s.pad, tinyReceiveBuffer)
	case "idle":
		n := pick(10000, 300)
		if b.inProcess {
			// Both ends of every socket are in this process: stay within
			// the open-file limit (commonly 20,000 here).
			n = min(n, 5000)
		}
		r, err := b.runIdle(ctx, n)
		sr.results = []result{r}
		sr.desc = fmt.Sprintf("%d subscribed connections that receive nothing (spread over %d loopback source addresses), then one row.", n, sourceIPs)
		return sr, err
	}
	for _, s := range runs {
		r, err := b.runStream(ctx, s)
		if err != nil {
			return sr, err
		}
		b.logf("%s", r.oneLine())
		sr.results = append(sr.results, r)
	}
	return sr, nil
}

// profileStream runs the one scenario of opts.scenarios against an
// in-process gateway and writes a CPU profile of its stream phases (from
// the first write of its first run to the last delivery of its last) to
// opts.profile.
func (b *bench) profileStream(ctx context.Context, rep *report) error {
	f, err := os.Create(b.opts.profile)
	if err != nil {
		return err
	}
	defer f.Close()
	var (
		started bool
		profErr error
	)
	b.onStreamStart = func() {
		if !started {
			started, profErr = true, pprof.StartCPUProfile(f)
		}
	}
	sr, err := b.scenario(ctx, b.opts.scenarios[0])
	if started {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	if profErr != nil {
		return fmt.Errorf("start CPU profile: %w", profErr)
	}
	rep.scenarios = append(rep.scenarios, sr)
	b.logf("wrote %s (gateway and bench client in one process); read it with:\n"+
		"  go tool pprof -top -focus 'ripple/backend|lxzan/gws|jackc/pgx' %s", b.opts.profile, b.opts.profile)
	return nil
}

// profileIdle runs idle against an in-process gateway and writes a heap
// profile to opts.heap once every subscriber is connected.
func (b *bench) profileIdle(ctx context.Context, rep *report) error {
	f, err := os.Create(b.opts.heap)
	if err != nil {
		return err
	}
	defer f.Close()
	var profErr error
	b.onIdleConnected = func() {
		runtime.GC()
		profErr = pprof.WriteHeapProfile(f)
	}
	sr, err := b.scenario(ctx, "idle")
	if err != nil {
		return err
	}
	if profErr != nil {
		return fmt.Errorf("write heap profile: %w", profErr)
	}
	rep.scenarios = append(rep.scenarios, sr)
	b.logf("wrote %s (gateway and bench client in one process); read it with:\n"+
		"  go tool pprof -sample_index=inuse_space -top -focus 'ripple/backend|lxzan/gws|net/http' %s", b.opts.heap, b.opts.heap)
	return nil
}

// raiseFileLimit lifts the soft limit on open files to the hard limit: the
// idle scenario holds 10,000 client sockets, and the gateway process
// inherits the limit for its side of them.
func raiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit NOFILE %d: %w", lim.Max, err)
	}
	return nil
}
