// Command benchfmt reads `go test -bench` output on stdin and prints one
// line per headline figure: `BENCH <name> <value> <unit>`.
//
// A benchmark publishes a headline figure with
//
//	b.ReportMetric(v, "<name>:<unit>")
//
// for example b.ReportMetric(rate, "detect_readings_per_s:readings/s").
// When a benchmark ran several times (-count), the median is printed.
// Figures appear in the order first seen. Other lines pass through to
// stderr unchanged when -v is set.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

type figure struct {
	name, unit string
	values     []float64
}

// parse collects headline figures from go test -bench output.
func parse(r io.Reader, echo io.Writer) ([]*figure, error) {
	var order []*figure
	byName := map[string]*figure{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if echo != nil {
			fmt.Fprintln(echo, line)
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		for i := 1; i < len(f); i++ {
			name, unit, ok := strings.Cut(f[i], ":")
			if !ok || name == "" || unit == "" {
				continue
			}
			v, err := strconv.ParseFloat(f[i-1], 64)
			if err != nil {
				continue
			}
			fig := byName[name]
			if fig == nil {
				fig = &figure{name: name, unit: unit}
				byName[name] = fig
				order = append(order, fig)
			}
			fig.values = append(fig.values, v)
		}
	}
	return order, sc.Err()
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func format(v float64) string {
	if v == float64(int64(v)) && v < 1e15 && v > -1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func main() {
	verbose := flag.Bool("v", false, "echo the go test output to stderr")
	flag.Parse()
	var echo io.Writer
	if *verbose {
		echo = os.Stderr
	}
	figs, err := parse(os.Stdin, echo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchfmt:", err)
		os.Exit(1)
	}
	for _, f := range figs {
		fmt.Printf("BENCH %s %s %s\n", f.name, format(median(f.values)), f.unit)
	}
	if len(figs) == 0 {
		fmt.Fprintln(os.Stderr, "benchfmt: no headline figures found")
		os.Exit(1)
	}
}
