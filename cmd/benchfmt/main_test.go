package main

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // "name value unit"
	}{
		{
			name: "one figure",
			in:   "BenchmarkObserve-2   1000   12.5 ns/op   8.0e+07 detect_readings_per_s:readings/s   0 allocs/op\n",
			want: []string{"detect_readings_per_s 80000000 readings/s"},
		},
		{
			name: "median of three runs, two figures",
			in: "BenchmarkA-2 1 5 a_x:u 1 b_y:v\n" +
				"BenchmarkA-2 1 9 a_x:u 2 b_y:v\n" +
				"BenchmarkA-2 1 7 a_x:u 3.5 b_y:v\n",
			want: []string{"a_x 7 u", "b_y 2 v"},
		},
		{
			name: "ignores non-benchmark lines and plain metrics",
			in:   "goos: linux\nPASS\nBenchmarkB-2 10 100 ns/op 3 MB/s\nok x 1s\n",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			figs, err := parse(strings.NewReader(tt.in), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range figs {
				got = append(got, f.name+" "+format(median(f.values))+" "+f.unit)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
