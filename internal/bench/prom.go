package bench

import (
	"bufio"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Buckets is a Prometheus histogram: cumulative counts by upper bound.
type Buckets map[float64]float64

// ParseHistogram reads the _bucket series of the histogram name from
// Prometheus text exposition, summed over label sets.
func ParseHistogram(text, name string) Buckets {
	b := Buckets{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := name + "_bucket{"
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.Index(line, `le="`)
		if i < 0 {
			continue
		}
		rest := line[i+4:]
		j := strings.IndexByte(rest, '"')
		if j < 0 {
			continue
		}
		le, err := strconv.ParseFloat(rest[:j], 64) // "+Inf" parses as +Inf
		if err != nil {
			continue
		}
		fields := strings.Fields(rest[j:])
		if len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			continue
		}
		b[le] += v
	}
	return b
}

// ParseCounter sums the samples of the counter name over its label sets
// in Prometheus text exposition; ok is false when there is none.
func ParseCounter(text, name string) (sum float64, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, found := strings.CutPrefix(line, name)
		if !found || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // another metric whose name starts with name
		}
		if rest[0] == '{' {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		sum += v
		ok = true
	}
	return sum, ok
}

// Sub is the histogram of the observations made between before and b.
func (b Buckets) Sub(before Buckets) Buckets {
	d := Buckets{}
	for le, v := range b {
		d[le] = v - before[le]
	}
	return d
}

// Count is the number of observations.
func (b Buckets) Count() float64 { return b[math.Inf(1)] }

// Quantile estimates quantile q (0..1) by linear interpolation inside the
// bucket that holds it, as Prometheus's histogram_quantile does; NaN when
// empty. A quantile in the +Inf bucket is reported as the highest bound.
func (b Buckets) Quantile(q float64) float64 {
	bounds := make([]float64, 0, len(b))
	for le := range b {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	total := b.Count()
	if len(bounds) == 0 || total <= 0 {
		return math.NaN()
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, le := range bounds {
		c := b[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return prevBound
			}
			if c == prevCount {
				return le
			}
			return prevBound + (le-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = le, c
	}
	return prevBound
}
