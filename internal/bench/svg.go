package bench

import (
	"fmt"
	"html"
	"math"
	"slices"
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
	return Plot{Title: title, XLabel: xLabel, YLabel: yLabel, Series: series}.SVG()
}

// Plot is one line chart: a linear X axis and a log10 Y axis whose ticks
// are milliseconds (LinePlot's), or a linear Y axis from 0.
type Plot struct {
	Title, XLabel, YLabel string
	Series                []Series
	// Linear makes the Y axis linear from 0, where points with Y = 0 are
	// drawn too (only NaN is left out).
	Linear bool
	// YTicks labels these Y values instead of evenly spaced numbers
	// (linear only): a state drawn as a number, 0 "healthy", 1 "degraded".
	YTicks map[float64]string
	// Spans shade ranges of X, each labelled along its left edge (the
	// phases of a run).
	Spans []Span
	// Step draws each series as steps, a value holding until the next
	// point; NoDots leaves out the dot at each point (dense series).
	Step, NoDots bool
	// Width and Height of the plot; 0 takes 720 × 420.
	Width, Height int
	// XMin and XMax fix the X range (plots stacked over one time axis);
	// equal, the range fits the points and spans.
	XMin, XMax float64
}

// Span is a shaded range of a Plot's X axis.
type Span struct {
	From, To float64
	Label    string
}

func (p Plot) size() (int, int) {
	w, h := p.Width, p.Height
	if w == 0 {
		w = plotW
	}
	if h == 0 {
		h = plotH
	}
	return w, h
}

// SVG renders the plot as a standalone SVG document.
func (p Plot) SVG() string {
	w, h := p.size()
	var b strings.Builder
	svgHeader(&b, w, h)
	p.body(&b)
	b.WriteString("</svg>\n")
	return b.String()
}

// Stack renders plots one above the other in one SVG document, each at its
// own height; plots of the same width and X range line up.
func Stack(plots ...Plot) string {
	width, height := 0, 0
	for _, p := range plots {
		w, h := p.size()
		width, height = max(width, w), height+h
	}
	var b strings.Builder
	svgHeader(&b, width, height)
	y := 0
	for _, p := range plots {
		fmt.Fprintf(&b, `<g transform="translate(0 %d)">`+"\n", y)
		p.body(&b)
		b.WriteString("</g>\n")
		_, h := p.size()
		y += h
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func svgHeader(b *strings.Builder, w, h int) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
}

// drawn reports whether a point with this Y is drawn on the axis.
func (p Plot) drawn(y float64) bool {
	if p.Linear {
		return !math.IsNaN(y) && !math.IsInf(y, 0)
	}
	return !math.IsNaN(y) && y > 0
}

// body writes the plot's elements in its own coordinates.
func (p Plot) body(b *strings.Builder) {
	width, height := p.size()
	series := p.Series
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for i, x := range s.X {
			y := s.Y[i]
			if !p.drawn(y) {
				continue
			}
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	for _, sp := range p.Spans {
		xmin, xmax = math.Min(xmin, sp.From), math.Max(xmax, sp.To)
	}
	if math.IsInf(xmin, 1) { // nothing to draw
		xmin, xmax, ymin, ymax = 0, 1, 1, 10
	}
	if p.XMax > p.XMin {
		xmin, xmax = p.XMin, p.XMax
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	if math.IsInf(ymin, 1) { // spans but no point
		ymin, ymax = 1, 10
	}
	innerW, innerH := float64(width-marginL-marginR), float64(height-marginT-marge)
	px := func(x float64) float64 { return marginL + (x-xmin)/(xmax-xmin)*innerW }
	type yTick struct {
		y          float64
		label      string
		major      bool
		unlabelled bool
	}
	var py func(y float64) float64
	var ticks []yTick
	if p.Linear {
		top := math.Max(ymax, 0)
		for v := range p.YTicks {
			top = math.Max(top, v)
		}
		if p.YTicks != nil {
			for _, v := range sortedKeys(p.YTicks) {
				ticks = append(ticks, yTick{y: v, label: p.YTicks[v], major: true})
			}
			top = math.Max(top, 1) * 1.08 // room above the highest state
		} else {
			for _, sp := range p.Spans {
				if sp.Label != "" { // room above the lines for the labels
					top /= 0.62
					break
				}
			}
			step := niceStep(top)
			top = math.Max(step, math.Ceil(top/step-1e-9)*step)
			for v := 0.0; v <= top+step/2; v += step {
				ticks = append(ticks, yTick{y: v, label: fmt.Sprintf("%g", v), major: true})
			}
		}
		py = func(y float64) float64 { return marginT + (top-y)/top*innerH }
	} else {
		lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
		if hi == lo {
			hi = lo + 1
		}
		py = func(y float64) float64 { return marginT + (hi-math.Log10(y))/(hi-lo)*innerH }
		// Decades, and 2 and 5 within them.
		for d := lo; d <= hi; d++ {
			for _, m := range []float64{1, 2, 5} {
				y := m * math.Pow(10, d)
				if math.Log10(y) > hi+1e-9 {
					break
				}
				t := yTick{y: y, major: m == 1, unlabelled: m != 1}
				if t.major {
					t.label = tick(y)
				}
				ticks = append(ticks, t)
			}
		}
	}

	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w(`<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(p.Title))
	for i, sp := range p.Spans {
		x0, x1 := px(math.Max(sp.From, xmin)), px(math.Min(sp.To, xmax))
		fill := "#f3f4f6"
		if i%2 == 1 {
			fill = "#e5e7eb"
		}
		w(`<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x0, marginT, math.Max(x1-x0, 0), innerH, fill)
		if sp.Label != "" {
			w(`<text transform="translate(%.1f %d) rotate(-90)" text-anchor="end" dominant-baseline="hanging" font-size="9" fill="#4b5563">%s</text>`+"\n",
				x0+1, marginT+4, html.EscapeString(sp.Label))
		}
	}
	for _, t := range ticks {
		stroke := "#eeeeee"
		if t.major {
			stroke = "#cccccc"
		}
		w(`<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`+"\n", marginL, marginL+innerW, py(t.y), py(t.y), stroke)
		if t.label != "" {
			w(`<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", marginL-6, py(t.y), html.EscapeString(t.label))
		}
	}
	// X ticks at the points of the series with the most, or evenly spaced
	// when there are too many points to label.
	var xs []float64
	for _, s := range series {
		if len(s.X) > len(xs) {
			xs = s.X
		}
	}
	if len(xs) > 12 || len(xs) == 0 && len(p.Spans) > 0 {
		xs = nil
		step := niceStep(xmax - xmin)
		for x := math.Ceil(xmin/step-1e-9) * step; x <= xmax+1e-9; x += step {
			xs = append(xs, x+0) // +0: no "-0" label
		}
	}
	for _, x := range xs {
		w(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#eeeeee"/>`+"\n", px(x), px(x), marginT, marginT+innerH)
		w(`<text x="%.1f" y="%.1f" text-anchor="middle">%g</text>`+"\n", px(x), marginT+innerH+16, x)
	}
	w(`<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#444444"/>`+"\n", marginL, marginT, innerW, innerH)
	w(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+innerW/2, height-12, html.EscapeString(p.XLabel))
	w(`<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+innerH/2, html.EscapeString(p.YLabel))

	for i, s := range series {
		color := s.Color
		if color == "" {
			color = palette[i%len(palette)]
		}
		var pts []string
		var lastY float64
		for j, x := range s.X {
			y := s.Y[j]
			if !p.drawn(y) {
				continue
			}
			if p.Step && len(pts) > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), py(lastY)))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), py(y)))
			lastY = y
		}
		if len(pts) > 1 {
			w(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		}
		if !p.NoDots {
			for j, x := range s.X {
				if y := s.Y[j]; p.drawn(y) {
					w(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", px(x), py(y), color)
				}
			}
		}
		ly := marginT + 10 + i*20
		w(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", marginL+innerW+14, marginL+innerW+38, ly, ly, color)
		w(`<text x="%.1f" y="%d" dominant-baseline="middle">%s</text>`+"\n", marginL+innerW+44, ly, html.EscapeString(s.Name))
	}
}

// niceStep is a step of 1, 2 or 5 times a power of ten that cuts span into
// about five to ten parts.
func niceStep(span float64) float64 {
	if !(span > 0) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(span/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(m*mag) <= 10 {
			return m * mag
		}
	}
	return 10 * mag
}

func sortedKeys(m map[float64]string) []float64 {
	keys := make([]float64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
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
