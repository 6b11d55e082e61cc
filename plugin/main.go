// Command pvekeep is the plugin binary: the panel's PHP side runs
// `pvekeep serve` per request (JSON-RPC on stdin/stdout), busy panels keep
// one `pvekeep serve --listen unix:/path` warm, and Go hosts launch it as a
// go-plugin plugin. It also migrates the database, runs the long-lived job
// worker, and starts the Proxmox simulator and the demo.
//
// main only parses flags and wires packages together (config → logger →
// database → Proxmox gateway → services → transport); exit codes are
// mapped in one place.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

// usageError is a command line the binary cannot act on: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage: pvekeep <command> [flags]

commands:
  serve     answer JSON-RPC on stdin/stdout, or on --listen unix:/path
  worker    drive jobs of the servers in the config file, forever
  migrate   create or update the mod_pvekeep_* tables (serve and worker
            also do it before answering, when the tables are behind)
  sim       run the Proxmox VE simulator (prints one JSON line, then serves)
  demo      play a client session against the simulator and a local MariaDB
  version   print the version

The database DSN comes from --dsn or PVEKEEP_DSN; the optional config file
from --config or PVEKEEP_CONFIG. Logs go to stderr only.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode is the one place errors become exit codes.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "pvekeep: %s\n\n%s", ue.msg, usage)
		return 2
	case errors.Is(err, context.Canceled):
		return 0
	default:
		fmt.Fprintf(stderr, "pvekeep: %v\n", err)
		return 1
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		// go-plugin launches the binary without a subcommand.
		if isPluginLaunch() {
			args = []string{"serve"}
		} else {
			return usageError{"no command given"}
		}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdin, stdout, stderr)
	case "worker":
		return runWorker(ctx, rest, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "sim":
		return runSim(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "pvekeep %s\n", version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// commonFlags are the flags every database-using command takes.
type commonFlags struct {
	dsn, config, logLevel string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dsn, "dsn", os.Getenv("PVEKEEP_DSN"), "database DSN (go-sql-driver/mysql form); default $PVEKEEP_DSN")
	fs.StringVar(&c.config, "config", os.Getenv("PVEKEEP_CONFIG"), "config file (TOML); default $PVEKEEP_CONFIG")
	fs.StringVar(&c.logLevel, "log-level", "", "debug, info, warn or error (overrides the config file)")
}

func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// newLogger writes text logs to stderr: stdout carries the protocol.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
