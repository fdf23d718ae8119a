// Command benchtable turns the output of
//
//	go test -run '^$' -bench Compare -benchmem -cpu 1,2 -count N
//
// into markdown tables, one per -cpu setting: for each sub-benchmark the
// median (or minimum, with -stat min) of ns/op, B/op and allocs/op over the
// N runs, and ns/op as a ratio to bare-rsa-verify of the same setting. It
// then prints the throughput scaling of the *-parallel benchmarks and the
// fief-go targets.
//
// Usage: benchtable [-stat median|min] [file] (standard input without file).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

const floor = "bare-rsa-verify"

// sample is one benchmark line.
type sample struct{ ns, bytes, allocs float64 }

// series are the samples of one sub-benchmark at one -cpu setting.
type series struct {
	name    string
	cpu     int
	samples []sample
}

var cpuSuffix = regexp.MustCompile(`-(\d+)$`)

func main() {
	stat := flag.String("stat", "median", "statistic over the runs: median or min")
	flag.Parse()
	var pick func([]float64) float64
	switch *stat {
	case "median":
		pick = median
	case "min":
		pick = slices.Min[[]float64]
	default:
		fmt.Fprintf(os.Stderr, "benchtable: -stat %q: want median or min\n", *stat)
		os.Exit(2)
	}
	in := io.Reader(os.Stdin)
	if flag.NArg() > 0 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	all, err := parse(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if len(all) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark lines")
		os.Exit(1)
	}
	report(os.Stdout, all, *stat, pick)
}

// parse reads benchmark lines in order of first appearance.
func parse(r io.Reader) ([]*series, error) {
	var out []*series
	index := map[string]*series{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name, cpu := f[0], 1
		if m := cpuSuffix.FindStringSubmatch(name); m != nil {
			cpu, _ = strconv.Atoi(m[1])
			name = strings.TrimSuffix(name, m[0])
		}
		if i := strings.IndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		s := sample{ns: math.NaN(), bytes: math.NaN(), allocs: math.NaN()}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				s.ns = v
			case "B/op":
				s.bytes = v
			case "allocs/op":
				s.allocs = v
			}
		}
		if math.IsNaN(s.ns) {
			continue
		}
		key := fmt.Sprintf("%s\x00%d", name, cpu)
		ser := index[key]
		if ser == nil {
			ser = &series{name: name, cpu: cpu}
			index[key] = ser
			out = append(out, ser)
		}
		ser.samples = append(ser.samples, s)
	}
	return out, sc.Err()
}

func median(v []float64) float64 {
	v = slices.Sorted(slices.Values(v))
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func column(s []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	return out
}

// summary is a series reduced by the statistic.
type summary struct{ ns, minNS, maxNS, bytes, allocs float64 }

func summarize(s *series, pick func([]float64) float64) summary {
	ns := column(s.samples, func(x sample) float64 { return x.ns })
	return summary{
		ns:     pick(ns),
		minNS:  slices.Min(ns),
		maxNS:  slices.Max(ns),
		bytes:  pick(column(s.samples, func(x sample) float64 { return x.bytes })),
		allocs: pick(column(s.samples, func(x sample) float64 { return x.allocs })),
	}
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 100:
		return group(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// group puts thin spaces between thousands.
func group(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratio(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.4f× (1/%.0f)", r, 1/r)
	}
	return fmt.Sprintf("%.2f×", r)
}

func report(w io.Writer, all []*series, stat string, pick func([]float64) float64) {
	var cpus []int
	sums := map[string]summary{}
	key := func(name string, cpu int) string { return fmt.Sprintf("%s\x00%d", name, cpu) }
	for _, s := range all {
		if !slices.Contains(cpus, s.cpu) {
			cpus = append(cpus, s.cpu)
		}
		sums[key(s.name, s.cpu)] = summarize(s, pick)
	}
	slices.Sort(cpus)

	for _, cpu := range cpus {
		base, hasBase := sums[key(floor, cpu)]
		fmt.Fprintf(w, "\n### -cpu %d (%s of the runs)\n\n", cpu, stat)
		fmt.Fprintln(w, "| benchmark | runs | ns/op | ns/op min–max | B/op | allocs/op | ns/op ÷ bare-rsa-verify |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
		for _, s := range all {
			if s.cpu != cpu {
				continue
			}
			m := sums[key(s.name, cpu)]
			r := "–"
			if hasBase {
				r = ratio(m.ns / base.ns)
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s–%s | %s | %s | %s |\n",
				s.name, len(s.samples), num(m.ns), num(m.minNS), num(m.maxNS), num(m.bytes), num(m.allocs), r)
		}
	}

	// Throughput scaling of the parallel benchmarks: ns/op at -cpu 1
	// divided by ns/op at -cpu N.
	var lines []string
	for _, s := range all {
		if s.cpu == 1 || !strings.HasSuffix(s.name, "-parallel") {
			continue
		}
		one, ok := sums[key(s.name, 1)]
		if !ok {
			continue
		}
		lines = append(lines, fmt.Sprintf("| %s | %d | %.2f× |", s.name, s.cpu, one.ns/sums[key(s.name, s.cpu)].ns))
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\n### Throughput scaling (%s ns/op at -cpu 1 ÷ at -cpu N)\n\n", stat)
		fmt.Fprintln(w, "| benchmark | N | throughput vs -cpu 1 |")
		fmt.Fprintln(w, "|---|--:|--:|")
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}

	// The fief-go targets, per -cpu setting.
	fmt.Fprintf(w, "\n### Targets (%s)\n\n", stat)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	for _, cpu := range cpus {
		base, ok := sums[key(floor, cpu)]
		if !ok {
			continue
		}
		if fs, ok := sums[key("fief-first-sight", cpu)]; ok {
			r := fs.ns / base.ns
			fmt.Fprintf(w, "- -cpu %d: fief-first-sight ≤ 1.15× bare-rsa-verify: %.3f× — %s\n", cpu, r, verdict(r <= 1.15))
		}
		if rp, ok := sums[key("fief-repeat", cpu)]; ok {
			r := rp.ns / base.ns
			fmt.Fprintf(w, "- -cpu %d: fief-repeat ≤ 1/50 of bare-rsa-verify and ≤ 3 allocs/op: 1/%.0f, %s allocs/op — %s\n",
				cpu, 1/r, num(rp.allocs), verdict(r <= 1.0/50 && rp.allocs <= 3))
		}
	}
	for _, cpu := range cpus {
		if cpu == 1 {
			continue
		}
		one, ok1 := sums[key("fief-middleware-parallel", 1)]
		n, okN := sums[key("fief-middleware-parallel", cpu)]
		if ok1 && okN {
			r := one.ns / n.ns
			fmt.Fprintf(w, "- fief-middleware-parallel throughput at -cpu %d ≥ 1.8× -cpu 1: %.2f× — %s\n", cpu, r, verdict(r >= 1.8))
		}
	}
}
