package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Series is one line of a plot; points with a NaN or non-positive Y are
// left out (the Y axis is logarithmic).
type Series struct {
	Name  string
	Color string // CSS color; "" takes the next of the palette
	X, Y  []float64
}

// Plot geometry, in SVG user units.
const (
	plotW, plotH                     = 720, 420
	marginL, marginR, marginT, marge = 80, 150, 44, 56
)

var palette = []string{"#6b7280", "#2563eb", "#dc2626", "#d97706", "#059669", "#7c3aed"}

// LinePlot draws series as an SVG line chart with a linear X axis and a
// log10 Y axis; it needs no library and no fonts beyond the viewer's.
func LinePlot(title, xLabel, yLabel string, series []Series) string {
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for i, x := range s.X {
			y := s.Y[i]
			if math.IsNaN(y) || y <= 0 {
				continue
			}
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	if math.IsInf(xmin, 1) { // nothing to draw
		xmin, xmax, ymin, ymax = 0, 1, 1, 10
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if hi == lo {
		hi = lo + 1
	}
	innerW, innerH := float64(plotW-marginL-marginR), float64(plotH-marginT-marge)
	px := func(x float64) float64 { return marginL + (x-xmin)/(xmax-xmin)*innerW }
	py := func(y float64) float64 { return marginT + (hi-math.Log10(y))/(hi-lo)*innerH }

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	w(`<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(title))
	// Y grid: decades, and 2 and 5 within them.
	for d := lo; d <= hi; d++ {
		for _, m := range []float64{1, 2, 5} {
			y := m * math.Pow(10, d)
			if math.Log10(y) > hi+1e-9 {
				break
			}
			stroke, label := "#eeeeee", ""
			if m == 1 {
				stroke, label = "#cccccc", tick(y)
			}
			w(`<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`+"\n", marginL, marginL+innerW, py(y), py(y), stroke)
			if label != "" {
				w(`<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", marginL-6, py(y), label)
			}
		}
	}
	// X ticks at the points of the first series that has any.
	var xs []float64
	for _, s := range series {
		if len(s.X) > len(xs) {
			xs = s.X
		}
	}
	for _, x := range xs {
		w(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#eeeeee"/>`+"\n", px(x), px(x), marginT, marginT+innerH)
		w(`<text x="%.1f" y="%.1f" text-anchor="middle">%g</text>`+"\n", px(x), marginT+innerH+16, x)
	}
	w(`<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#444444"/>`+"\n", marginL, marginT, innerW, innerH)
	w(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+innerW/2, plotH-12, html.EscapeString(xLabel))
	w(`<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+innerH/2, html.EscapeString(yLabel))

	for i, s := range series {
		color := s.Color
		if color == "" {
			color = palette[i%len(palette)]
		}
		var pts []string
		for j, x := range s.X {
			if y := s.Y[j]; !math.IsNaN(y) && y > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), py(y)))
			}
		}
		if len(pts) > 1 {
			w(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		}
		for _, p := range pts {
			xy := strings.Split(p, ",")
			w(`<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", xy[0], xy[1], color)
		}
		ly := marginT + 10 + i*20
		w(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", marginL+innerW+14, marginL+innerW+38, ly, ly, color)
		w(`<text x="%.1f" y="%d" dominant-baseline="middle">%s</text>`+"\n", marginL+innerW+44, ly, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// tick labels a power of ten of milliseconds.
func tick(ms float64) string {
	if ms < 1 {
		return fmt.Sprintf("%g µs", ms*1000)
	}
	if ms >= 1000 {
		return fmt.Sprintf("%g s", ms/1000)
	}
	return fmt.Sprintf("%g ms", ms)
}

// targetColors keep each target's color the same from run to run.
var targetColors = map[string]string{
	Direct: "#6b7280", Nginx: "#2563eb", Deerd: "#dc2626", GoProxy: "#d97706", Portkey: "#059669",
}

// AddedPlots draws Phase B's added latency against rate, one plot per
// quantile, and returns SVG documents by file name.
func (res *Results) AddedPlots() map[string]string {
	out := map[string]string{}
	for _, q := range []struct {
		file string
		p    float64
		name string
	}{{"added-p50.svg", 50, "p50"}, {"added-p99.svg", 99, "p99"}} {
		var series []Series
		for _, t := range res.Targets {
			s := Series{Name: t, Color: targetColors[t]}
			for _, rate := range res.Plan.Rates {
				st, ok := res.step(t, rate)
				if !ok {
					continue
				}
				s.X = append(s.X, rate)
				s.Y = append(s.Y, st.Added(q.p, res.Plan.SimLatency)/1000) // ms
			}
			series = append(series, s)
		}
		title := fmt.Sprintf("%s latency added above deersim's %s, by offered rate", q.name, res.Plan.SimLatency)
		out[q.file] = LinePlot(title, "offered rate (requests per second)", q.name+" added latency (log scale)", series)
	}
	return out
}
