package main

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// strategyColors keep a strategy's colour the same in every panel.
var strategyColors = map[string]color.Color{
	"vminit":   color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"vminit-b": color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	"floor":    color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"polled":   color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"signalfd": color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// jitter spreads the strategies' dots around each N, on the log axis.
var jitter = map[string]float64{"vminit": 0.97, "vminit-b": 0.98, "floor": 0.99, "polled": 1.01, "signalfd": 1.03}

// writePlot draws latency against N, log-log, one panel per scenario that
// was run at more than one N: the median of each strategy as a line, every
// run as a faint dot (the polled design's two modes show as two bands).
func writePlot(w io.Writer, res *Result) error {
	rs := rows(res.Samples)
	ns := map[string]map[int]bool{}
	swept := 0
	for _, r := range rs {
		if ns[r.Scenario] == nil {
			ns[r.Scenario] = map[int]bool{}
		}
		ns[r.Scenario][r.N] = true
		if len(ns[r.Scenario]) == 2 {
			swept++
		}
	}
	var panels []*plot.Plot
	for _, sc := range scenarios {
		// Only the scenarios run at several N, unless none was.
		if len(ns[sc.name]) == 0 || swept > 0 && len(ns[sc.name]) < 2 {
			continue
		}
		p, err := panel(sc, rs)
		if err != nil {
			return err
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return fmt.Errorf("plot: no samples")
	}
	const width, height = 14 * vg.Centimeter, 11 * vg.Centimeter
	img := vgsvg.New(width*vg.Length(len(panels)), height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Centimeter, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{panels}, tiles, dc)
	for i, p := range panels {
		p.Draw(canvases[0][i])
	}
	_, err := img.WriteTo(w)
	return err
}

func panel(sc scenario, rs []*row) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s\nlines: medians; dots: every run", sc.name, sc.doc)
	p.X.Label.Text = "processes (N)"
	p.Y.Label.Text = "trigger → reboot(2), ms"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = 1.4*vg.Centimeter, -0.3*vg.Centimeter
	p.Add(plotter.NewGrid())
	for _, st := range strategyNames {
		var med, dots plotter.XYs
		for _, r := range rs {
			if r.Scenario != sc.name || r.Strategy != st || math.IsNaN(r.Latency.Median) {
				continue
			}
			med = append(med, plotter.XY{X: float64(r.N), Y: r.Latency.Median})
			for _, s := range r.samples {
				if s.OK && s.Latency > 0 {
					dots = append(dots, plotter.XY{X: float64(r.N) * jitter[st], Y: float64(s.Latency) / 1e6})
				}
			}
		}
		if len(med) == 0 {
			continue
		}
		c := strategyColors[st]
		sc, err := plotter.NewScatter(dots)
		if err != nil {
			return nil, err
		}
		faint := color.NRGBAModel.Convert(c).(color.NRGBA)
		faint.A = 0x60
		sc.GlyphStyle = draw.GlyphStyle{Color: faint, Radius: vg.Points(1.6), Shape: draw.CircleGlyph{}}
		l, pts, err := plotter.NewLinePoints(med)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = c, vg.Points(1.5)
		pts.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
		p.Add(sc, l, pts)
		p.Legend.Add(st, l, pts)
	}
	return p, nil
}
