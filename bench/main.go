package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() { os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr)) }

// vminitOverride, if set, is a vminit binary to run instead of the one the
// harness builds (bench -vminit); vminitB, if set, is a second one to run
// as strategy vminit-b (bench -b): a changed vminit measured against the
// current one, interleaved run by run.
var vminitOverride, vminitB string

// vminitBFlags are flags for vminit-b (bench -b-flags).
var vminitBFlags []string

// benchMain is the command; it returns the exit status.
func benchMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("matrix", "quick", "quick (make bench), full (make bench-full) or smoke (make test)")
	reps := fs.Int("reps", 0, "override the repetitions of every cell")
	out := fs.String("out", "bench/results", "directory for the JSON, Markdown and SVG files")
	seed := fs.Uint64("seed", 0, "seed for the run order and the random scenario (0: from the clock)")
	replot := fs.String("replot", "", "do not run: rewrite the table and plot of this results JSON")
	only := fs.String("only", "", "run only these cells: comma-separated SCENARIO or SCENARIO:N")
	strategies := fs.String("strategies", "", "run only these strategies (comma-separated)")
	vminitBin := fs.String("vminit", "", "run this vminit binary instead of building one (profiling)")
	bBin := fs.String("b", "", "A/B: also run this vminit binary, as strategy vminit-b, interleaved with the others")
	bFlags := fs.String("b-flags", "", "A/B: flags for vminit-b (space-separated, e.g. --reap-names=false); without -b, vminit-b is the same binary")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *replot != "" {
		res, err := readResult(*replot)
		if err == nil {
			var paths []string
			paths, err = writeOutputs(res, filepath.Dir(*replot), strings.TrimSuffix(filepath.Base(*replot), ".json"), false)
			fmt.Fprintln(stderr, strings.Join(paths, "\n"))
		}
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		return 0
	}
	m, err := matrices(*name, *reps)
	if err == nil && *only != "" {
		m, err = m.only(*only)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	if *strategies != "" {
		if err := onlyStrategies(*strategies); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 2
		}
	}
	vminitOverride = *vminitBin
	if *bBin != "" || *bFlags != "" {
		vminitB, vminitBFlags = *bBin, strings.Fields(*bFlags)
		strategyNames = append(strategyNames[:1:1], append([]string{"vminit-b"}, strategyNames[1:]...)...)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	res, err := runMatrix(m, *seed, nil, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	res.Command = "go run ./bench " + strings.Join(args, " ")
	stamp := res.Started.UTC().Format("20060102-150405")
	paths, err := writeOutputs(res, *out, m.Name+"-"+stamp, true)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	writeReport(stdout, res)
	fmt.Fprintf(stdout, "\nwritten: %s\n", strings.Join(paths, ", "))
	return 0
}

// writeOutputs writes BASE.json (unless only the table and plot are
// redone), BASE.md and BASE.svg into dir, each through a temporary file.
func writeOutputs(res *Result, dir, base string, withJSON bool) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	write := func(ext string, f func(io.Writer) error) error {
		path := filepath.Join(dir, base+ext)
		tmp := path + ".tmp"
		w, err := os.Create(tmp)
		if err != nil {
			return err
		}
		if err := f(w); err != nil {
			w.Close()
			os.Remove(tmp)
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := w.Close(); err != nil {
			return err
		}
		paths = append(paths, path)
		return os.Rename(tmp, path)
	}
	if withJSON {
		if err := write(".json", func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", " ")
			return enc.Encode(res)
		}); err != nil {
			return paths, err
		}
	}
	if err := write(".md", func(w io.Writer) error { writeReport(w, res); return nil }); err != nil {
		return paths, err
	}
	err := write(".svg", func(w io.Writer) error { return writePlot(w, res) })
	return paths, err
}

func readResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &res, nil
}
