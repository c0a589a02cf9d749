package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// report is everything one run of the tool measured.
type report struct {
	command string
	quick   bool
	started time.Time
	machine machine
	// background is the machine's busy time per second, in cores, measured
	// before the first scenario (other work on the machine).
	background float64
	scenarios  []scenarioResults
	writePath  []writeResult
	micro      string
}

// scenarioResults are the runs of one scenario.
type scenarioResults struct {
	name    string
	desc    string
	results []result
}

// machine describes where the numbers come from.
type machine struct {
	cpu, kernel, goVersion, postgres string
	nproc                            int
}

func (b *bench) machine(ctx context.Context) (machine, error) {
	m := machine{nproc: runtime.NumCPU(), goVersion: runtime.Version(), cpu: "unknown", kernel: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(k))
	}
	if err := b.pool.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&m.postgres); err != nil {
		return m, fmt.Errorf("read the Postgres version: %w", err)
	}
	m.postgres += " (" + b.pg.Source + ", fsync off)"
	return m, nil
}

// find returns the result named name.
func (r *report) find(name string) (result, bool) {
	for _, s := range r.scenarios {
		for _, res := range s.results {
			if res.name == name {
				return res, true
			}
		}
	}
	return result{}, false
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks\n\n")
	p("Measured by `%s` (the `go tool task bench` task) on %s.", r.command, r.started.Format("2006-01-02 15:04 UTC"))
	if r.quick {
		p(" **Quick run: scenarios shrunk for a smoke test; the numbers are not comparable with the targets.**")
	}
	p("\n\nEverything runs on one machine over loopback: Postgres (a throwaway cluster), the gateway (`ripple serve`, a separate process, default settings except `RIPPLE_AUTH=none` and no cap on connections per client IP), and the bench client (github.com/coder/websocket subscribers, pgx writers, a raw pgx `LISTEN` client). They share the CPUs.\n\n")
	p("| machine | |\n| --- | --- |\n")
	p("| CPU | %s |\n| cores (nproc) | %d |\n| kernel | %s |\n| Go | %s |\n| Postgres | %s |\n", r.machine.cpu, r.machine.nproc, r.machine.kernel, r.machine.goVersion, r.machine.postgres)
	p("| load before the run | %.0f%% of one core busy with other work |\n\n", 100*r.background)
	p("Latency is from the moment the writer sends the row's INSERT (the row carries that time in `sent_at`, unix nanoseconds) to the moment the client has read the frame holding it; so it includes the INSERT's round trip and commit, for the gateway and the `LISTEN` floor alike. *Seq breaks* counts changes whose `seq` is not the previous one + 1 (a gap or a reordering). *Deliveries/s* divides the distinct changes received by the time from the first send to the last delivery. *Tail* is the last delivery's time after the last commit. *Changes per frame* shows the gateway's batching: changes received per WebSocket message read. *Wall* runs from the first send to the last delivery. CPU columns are user + system time during the stream (`/proc/<pid>/stat`; Postgres: all its processes; *machine busy*: all cores, from `/proc/stat`), with the share of one core over the wall time in parentheses; gateway peak RSS is the gateway process's `VmHWM`. Each run starts a fresh gateway process.\n\n")

	p("## Targets (issue 8)\n\n| target | reached | met |\n| --- | --- | --- |\n")
	for _, t := range r.targets() {
		p("| %s | %s | %s |\n", t.target, t.reached, yesNo(t.met))
	}
	p("\n")

	for _, s := range r.scenarios {
		p("## %s\n\n%s\n\n", s.name, s.desc)
		p("| run | subscribers | rows | expected | received | duplicates | seq breaks | resyncs | p50 | p95 | p99 | max | deliveries/s | tail | changes per frame |\n")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, res := range s.results {
			if !res.floorOnly {
				subs := fmt.Sprint(res.subs)
				if res.vanished > 0 {
					subs = fmt.Sprintf("%d (+%d vanished)", res.subs, res.vanished)
				}
				p("| %s gateway | %s | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s | %.0f | %s | %.2f |\n",
					res.name, subs, res.rows, res.expected, res.received, res.dups, res.breaks, res.resyncs,
					fmtDur(res.lat.p50), fmtDur(res.lat.p95), fmtDur(res.lat.p99), fmtDur(res.lat.max), res.rate, fmtDur(res.tail),
					float64(res.received)/float64(max(res.frames, 1)))
			}
			if f := res.floor; f != nil {
				p("| %s LISTEN floor | 1 | %d | %d | %d | %d | – | – | %s | %s | %s | %s | %.0f | – | – |\n",
					res.name, res.rows, res.rows, f.received, f.dups, fmtDur(f.lat.p50), fmtDur(f.lat.p95), fmtDur(f.lat.p99), fmtDur(f.lat.max), f.rate)
			}
		}
		p("\n| run | wall | gateway CPU | gateway peak RSS | Postgres CPU | bench CPU | everything else | machine busy (%d cores) |\n", r.machine.nproc)
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, res := range s.results {
			cpu, rss := "in-process", "in-process"
			switch {
			case res.floorOnly:
				cpu, rss = "no gateway", "–"
			case res.gwMeasured:
				cpu, rss = fmtCPU(res.cpu.gateway, res.wall), fmtBytes(float64(res.gwPeakRSS))
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", res.name, fmtDur(res.wall), cpu, rss,
				fmtCPU(res.cpu.postgres, res.wall), fmtCPU(res.cpu.bench, res.wall), fmtCPU(res.cpu.other(), res.wall), fmtCPU(res.cpu.machine, res.wall))
		}
		for _, res := range s.results {
			if res.gwMeasured && res.perConnRSS != 0 {
				p("\nGateway memory per idle subscribed connection (%d connections; deltas from before connecting to after, read from `/proc` and the gateway's `/metrics`, without forcing a GC): "+
					"%s of RSS = %s of Go heap in use + %s of goroutine stacks (%.2f goroutines per connection) + the rest (garbage not yet collected, runtime). "+
					"Connecting and subscribing them all took %s and %.2f s of gateway CPU; the CPU columns above cover the one change.\n",
					res.subs, fmtBytes(res.perConnRSS), fmtBytes(res.perConnHeap), fmtBytes(res.perConnStack), res.goroutinesPerConn,
					fmtDur(res.connectTime), res.connectCPU.Seconds())
			}
			if res.note != "" {
				p("\n%s: %s\n", res.name, res.note)
			}
			if len(res.clientErrs) > 0 {
				p("\n%s: %d client errors, first: `%s`\n", res.name, len(res.clientErrs), res.clientErrs[0])
			}
		}
		p("\n")
	}

	if len(r.writePath) > 0 {
		p("## Write path: the trigger's cost on single-row inserts\n\n")
		p("Single-row `INSERT`s, each its own transaction, as fast as they commit, into a table of (id identity, sent_at bigint, pad text).\n\n")
		p("| table | connections | inserts/s | µs per insert | vs. no trigger |\n| --- | ---: | ---: | ---: | ---: |\n")
		var base float64
		for _, w := range r.writePath {
			if w.mode == "no trigger" {
				base = w.perSecond()
			}
			rel := "–"
			if base > 0 && w.mode != "no trigger" {
				rel = fmt.Sprintf("%+.1f%%", 100*(w.perSecond()/base-1))
			}
			p("| %s | %d | %.0f | %.1f | %s |\n", w.mode, w.conns, w.perSecond(), float64(w.elapsed.Microseconds())*float64(w.conns)/float64(w.inserts), rel)
		}
		p("\n")
	}
	if r.micro != "" {
		p("## Go micro-benchmarks\n\n`go test -run '^$' -bench . -benchmem -timeout 5m ./backend/...`:\n\n```\n%s```\n\n", r.micro)
	}
	p("## Profiles\n\n`go run ./tools/bench --profile cpu.pprof [--scenario latency|fanout|churn]` runs one scenario against a gateway inside the tool's process and writes a CPU profile of its stream phases; " +
		"`go run ./tools/bench --heap-profile heap.pprof` does the same for idle with a heap profile taken after a GC once every connection has subscribed. " +
		"The bench client shares that process: focus on the gateway, e.g. `go tool pprof -top -cum -focus 'ripple/backend|lxzan/gws' cpu.pprof`.\n")
	return b.String()
}

// target is one target of issue 8 and what this run reached.
type target struct {
	target, reached string
	met             bool
}

func (r *report) targets() []target {
	var ts []target
	l100, ok100 := r.find("latency-100")
	fl, okFloor := r.find("latency-floor")
	if ok100 && okFloor && fl.floor != nil {
		d := l100.lat.p99 - fl.floor.lat.p99
		ts = append(ts, target{"latency, 100 subscribers: p99 within 1.5 ms of the LISTEN floor",
			fmt.Sprintf("p99 %s vs floor %s alone (%+.2f ms); the LISTEN client in the same run: %s",
				fmtDur(l100.lat.p99), fmtDur(fl.floor.lat.p99), float64(d)/1e6, fmtDur(l100.floor.lat.p99)),
			d <= 1500*time.Microsecond})
	}
	if l400, ok := r.find("latency-400"); ok {
		ts = append(ts, target{"latency, 400 subscribers: p99 ≤ 10 ms", "p99 " + fmtDur(l400.lat.p99), l400.lat.p99 <= 10*time.Millisecond})
	}
	if f, ok := r.find("fanout"); ok {
		ts = append(ts, target{"fanout: ≥ 250,000 changes delivered per second", fmt.Sprintf("%.0f/s", f.rate), f.rate >= 250000})
		ts = append(ts, target{"fanout: last delivery within 1 s of the last commit", fmtDur(f.tail), f.tail <= time.Second && f.received == f.expected})
	}
	if i, ok := r.find("idle"); ok {
		ts = append(ts, target{"idle: ≤ 8 KiB of gateway memory per idle subscribed connection",
			fmt.Sprintf("%s RSS (%s heap, %s stacks)", fmtBytes(i.perConnRSS), fmtBytes(i.perConnHeap), fmtBytes(i.perConnStack)), i.perConnRSS <= 8192})
		ts = append(ts, target{fmt.Sprintf("idle: one change reaches all %d within 150 ms", i.subs),
			"last after " + fmtDur(i.lat.max), i.received == i.expected && i.lat.max <= 150*time.Millisecond})
	}
	var bad []string
	for _, s := range r.scenarios {
		for _, res := range s.results {
			if res.floorOnly {
				continue
			}
			if res.received != res.expected || res.dups != 0 || res.breaks != 0 || res.resyncs != 0 {
				bad = append(bad, fmt.Sprintf("%s: %d/%d, %d dups, %d breaks, %d resyncs", res.name, res.received, res.expected, res.dups, res.breaks, res.resyncs))
			}
		}
	}
	if len(r.scenarios) > 0 {
		reached := "all delivered once, in order"
		if len(bad) > 0 {
			reached = strings.Join(bad, "; ")
		}
		ts = append(ts, target{"zero loss, zero duplicates, in order, every scenario (churn: the survivors)", reached, len(bad) == 0})
	}
	if len(r.writePath) > 0 {
		ts = append(ts, target{"write path: trigger cost on single-row inserts measured", "see Write path", true})
	}
	return ts
}

// fmtCPU shows CPU time, and the share of one core over wall when the
// window is long enough for the share to mean something.
func fmtCPU(cpu, wall time.Duration) string {
	if wall < 500*time.Millisecond {
		return fmt.Sprintf("%.2f s", cpu.Seconds())
	}
	return fmt.Sprintf("%.2f s (%.0f%%)", cpu.Seconds(), 100*cpu.Seconds()/wall.Seconds())
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

func fmtBytes(n float64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10 || n <= -1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", n)
	}
}
