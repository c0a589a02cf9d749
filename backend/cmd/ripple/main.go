// Command ripple is Ripple's gateway and CLI: it serves Postgres row changes
// to WebSocket clients, manages the database side, and runs a local demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of the CLI.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "[flags]", "run the gateway (settings from flags and environment)", runServe},
		{"dev", "[flags]", "run the gateway on a throwaway Postgres with the demo tables", runDev},
		{"schema", "apply [--demo]", "create or upgrade Ripple's schema in DATABASE_URL", runSchema},
		{"enable", "<table>…", "install the change trigger on tables", runEnable},
		{"disable", "<table>…", "remove the change trigger from tables", runDisable},
		{"tail", "<channel>… [--url ws://…] [--filter column=value]", "print changes as JSON lines", runTail},
		{"version", "", "print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ripple:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("missing command")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Ripple pushes Postgres row changes to WebSocket clients.\n\nUsage: ripple <command> [arguments]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %-45s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nRun `ripple <command> --help` for a command's flags.")
}

// newFlagSet returns a flag set whose --help prints a usage line and the flags.
func newFlagSet(name, args, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ripple %s %s\n\n%s\n\nFlags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}
