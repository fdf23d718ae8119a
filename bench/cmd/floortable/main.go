// Command floortable turns the output of the root package's benchmarks, run
// in several builds by bench/floor.sh (each line prefixed with its build's
// name), into one markdown table: for each build, benchmark and -cpu
// setting, the minimum over the runs of ns/op, and B/op and allocs/op, and
// ns/op as a ratio to the bare RSA check (bare-rsa-verify) of the same
// benchmark, build and setting. It then prints, for each build, how the
// parallel benchmarks scale from -cpu 1 to -cpu 2.
//
// Usage: floortable file
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// line: "<build> BenchmarkTop/sub-<cpu>  N  ns ns/op  B B/op  A allocs/op"
var lineRE = regexp.MustCompile(`^(\S+) (Benchmark[^/\s]+)/(\S+?)(?:-(\d+))?\s+\d+\s+([\d.]+) ns/op\s+([\d.]+) B/op\s+([\d.]+) allocs/op`)

type key struct{ build, top, sub, cpu string }

type stats struct {
	ns            []float64
	bytes, allocs float64
	order         int
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floortable file")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "floortable:", err)
		os.Exit(1)
	}
	defer f.Close()
	data := map[key]*stats{}
	var keys []key
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		cpu := m[4]
		if cpu == "" {
			cpu = "1"
		}
		k := key{m[1], m[2], m[3], cpu}
		st, ok := data[k]
		if !ok {
			st = &stats{order: len(keys)}
			data[k] = st
			keys = append(keys, k)
		}
		ns, _ := strconv.ParseFloat(m[5], 64)
		st.ns = append(st.ns, ns)
		st.bytes, _ = strconv.ParseFloat(m[6], 64)
		st.allocs, _ = strconv.ParseFloat(m[7], 64)
	}
	fmt.Println("| build | benchmark | -cpu | ns/op (min) | B/op | allocs/op | vs bare RSA |")
	fmt.Println("|---|---|--:|--:|--:|--:|--:|")
	for _, k := range keys {
		st := data[k]
		ratio := ""
		if floor, ok := data[key{k.build, k.top, "bare-rsa-verify", k.cpu}]; ok && k.sub != "bare-rsa-verify" {
			r := slices.Min(st.ns) / slices.Min(floor.ns)
			if r >= 0.1 {
				ratio = fmt.Sprintf("%.3f×", r)
			} else {
				ratio = fmt.Sprintf("1/%.0f", 1/r)
			}
		} else if k.sub == "bare-rsa-verify" {
			ratio = "1.000×"
		}
		fmt.Printf("| %s | %s/%s | %s | %s | %.0f | %.0f | %s |\n", k.build, strings.TrimPrefix(k.top, "Benchmark"), k.sub, k.cpu,
			group(slices.Min(st.ns)), st.bytes, st.allocs, ratio)
	}
	fmt.Println()
	fmt.Println("| build | parallel benchmark | ns/op -cpu 1 | ns/op -cpu 2 | throughput scaling |")
	fmt.Println("|---|---|--:|--:|--:|")
	for _, k := range keys {
		if k.cpu != "1" || !strings.HasSuffix(k.sub, "-parallel") {
			continue
		}
		two, ok := data[key{k.build, k.top, k.sub, "2"}]
		if !ok {
			continue
		}
		one := slices.Min(data[k].ns)
		fmt.Printf("| %s | %s | %s | %s | %.2f× |\n", k.build, k.sub, group(one), group(slices.Min(two.ns)), one/slices.Min(two.ns))
	}
}

// group formats ns with a thin space between thousands.
func group(ns float64) string {
	s := strconv.FormatFloat(ns, 'f', -1, 64)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		if ns >= 100 {
			s = s[:i]
		} else if len(s) > i+2 {
			s = s[:i+2]
		}
	}
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}
