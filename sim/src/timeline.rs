//! The timeline of a simulation: idle/running/completed as sampled every
//! period, with the faults injected (master SIGKILLs, foreman partitions), and
//! its two outputs.
//!
//! * a CSV, one row per sample plus one row per fault event, for anyone who
//!   wants to plot or check the run with their own tools;
//! * an SVG chart, hand-written so the simulator needs no plotting crate and
//!   the file opens in any browser, to see at a glance how the queue drained
//!   and what each fault did to it.
//!
//! It also computes the two rates a run is summed up by: the peak completion
//! rate (busiest second) and the sustained one (from 10% to 90% of the
//! completions, which leaves out the ramp-up and the long tail).
//!
//! Sampling may be irregular (the simulator's sampler is a task that can be
//! late under load), so the rates treat the cumulative `completed` count as a
//! piecewise-linear function of time rather than assuming a fixed period.

use serde::Serialize;
use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::path::Path;

/// One reading, taken every sampling period by the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the simulation started.
    pub t_s: f64,
    /// Jobs submitted and not yet running nor completed.
    pub idle: u64,
    pub running: u64,
    /// Cumulative.
    pub completed: u64,
    pub master_up: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub samples: Vec<Sample>,
    /// Seconds at which the master was SIGKILLed.
    pub crashes: Vec<f64>,
    /// Foreman partitions: (start s, end s).
    pub partitions: Vec<(f64, f64)>,
}

/// How the chart is labelled, and moments marked under it: the
/// simulator's defaults, or what `pilotq journal plot` says of a journal
/// (restarts rather than kills, holder losses marked).
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    /// What a line in `crashes` is called.
    pub crash_label: String,
    pub x_label: String,
    /// Moments marked by a short tick at the foot of the plot (at most one
    /// per pixel is drawn), and what they are called in the legend.
    pub ticks: Vec<f64>,
    pub ticks_label: String,
}

impl Default for Chart {
    fn default() -> Self {
        Chart {
            title: TITLE.into(),
            crash_label: "master killed".into(),
            x_label: "time since start (s)".into(),
            ticks: Vec::new(),
            ticks_label: String::new(),
        }
    }
}

impl Timeline {
    /// Writes the CSV: header `t_s,idle,running,completed,master_up,event`,
    /// one row per sample and one per fault event, all ordered by time.
    pub fn write_csv(&self, path: &Path) -> io::Result<()> {
        let mut w = io::BufWriter::new(std::fs::File::create(path)?);
        self.write_csv_to(&mut w)?;
        // Flushed explicitly: dropping a BufWriter would swallow the error.
        w.flush()
    }

    /// Writes the SVG chart (about 900×400, self-contained).
    pub fn write_svg(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.svg_string())
    }

    /// [`Timeline::write_svg`] with other labels and marks.
    pub fn write_svg_chart(&self, path: &Path, chart: &Chart) -> io::Result<()> {
        std::fs::write(path, self.svg_string_with(chart))
    }

    /// Completions per second over the busiest 1-second window, from the
    /// cumulative `completed` interpolated linearly between samples; 0.0 with
    /// fewer than 2 samples. Samples sparser than a second smooth the peak
    /// out: nothing is known of what happened between them.
    pub fn peak_rate(&self) -> f64 {
        let c = Cumulative::new(&self.samples);
        let (Some(&t0), Some(&tn)) = (c.t.first(), c.t.last()) else {
            return 0.0;
        };
        if c.t.len() < 2 {
            return 0.0;
        }
        if tn - t0 <= WINDOW_S {
            // Shorter than a window: the one window that covers the run holds
            // all its completions, and nothing is known outside it.
            return (c.at(tn) - c.at(t0)).max(0.0) / WINDOW_S;
        }
        // C(s + 1) - C(s) is piecewise linear in s, with kinks only where s
        // or s + 1 is a sample time, so its maximum is at one of those (or at
        // an end of the range of windows inside the run).
        let last_start = tn - WINDOW_S;
        let candidates =
            c.t.iter()
                .flat_map(|&t| [t, t - WINDOW_S])
                .chain([t0, last_start])
                .filter(|&s| s >= t0 && s <= last_start);
        candidates
            .map(|s| c.at(s + WINDOW_S) - c.at(s))
            .fold(0.0, f64::max)
            / WINDOW_S
    }

    /// Sustained completion rate: completions between the moments 10% and
    /// 90% of the final `completed` count were reached, divided by the time
    /// between them; 0.0 if that is undefined (nothing completed, or both
    /// reached at the same moment).
    pub fn sustained_rate(&self) -> f64 {
        let c = Cumulative::new(&self.samples);
        let Some(&last) = c.v.last() else {
            return 0.0;
        };
        if last <= 0.0 {
            return 0.0;
        }
        let (lo, hi) = (0.1 * last, 0.9 * last);
        match (c.first_reaching(lo), c.first_reaching(hi)) {
            // Over at least the peak's window: a burst that took 10% to 90%
            // within one sample is not a sustained rate above the peak.
            (Some(t_lo), Some(t_hi)) if t_hi > t_lo => (hi - lo) / (t_hi - t_lo).max(WINDOW_S),
            _ => 0.0,
        }
    }

    fn write_csv_to(&self, w: &mut impl io::Write) -> io::Result<()> {
        writeln!(w, "t_s,idle,running,completed,master_up,event")?;
        enum Row<'a> {
            Sample(&'a Sample),
            Event(&'static str),
        }
        let mut rows: Vec<(f64, Row)> =
            Vec::with_capacity(self.samples.len() + self.crashes.len() + 2 * self.partitions.len());
        rows.extend(
            self.crashes
                .iter()
                .map(|&t| (t, Row::Event("master_killed"))),
        );
        for &(start, end) in &self.partitions {
            rows.push((start, Row::Event("partition_start")));
            rows.push((end, Row::Event("partition_end")));
        }
        rows.extend(self.samples.iter().map(|s| (s.t_s, Row::Sample(s))));
        // Stable, so rows at the same instant keep the order they were pushed
        // in: events before the sample (which shows their consequence), and a
        // partition's start before its end.
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (t, row) in rows {
            match row {
                Row::Sample(s) => writeln!(
                    w,
                    "{t:.3},{},{},{},{},",
                    s.idle, s.running, s.completed, s.master_up as u8
                )?,
                Row::Event(name) => writeln!(w, "{t:.3},,,,,{name}")?,
            }
        }
        Ok(())
    }

    fn svg_string(&self) -> String {
        self.svg_string_with(&Chart::default())
    }

    fn svg_string_with(&self, chart: &Chart) -> String {
        let mut out = String::new();
        self.render_svg(&mut out, chart)
            .expect("writing to a String cannot fail");
        out
    }

    fn render_svg(&self, out: &mut String, chart: &Chart) -> fmt::Result {
        // Samples whose time is not a number cannot be placed; they are left
        // out of the chart (the CSV still has them).
        let mut samples: Vec<Sample> = self
            .samples
            .iter()
            .copied()
            .filter(|s| s.t_s.is_finite())
            .collect();
        samples.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif">"#,
            W = WIDTH,
            H = HEIGHT
        )?;
        writeln!(out, "<title>{}</title>", esc(&chart.title))?;
        writeln!(
            out,
            r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
        )?;
        writeln!(
            out,
            r#"<text x="{LEFT}" y="22" font-size="16" font-weight="bold">{}</text>"#,
            esc(&chart.title)
        )?;
        if samples.is_empty() {
            writeln!(
                out,
                r##"<text x="{}" y="{}" font-size="14" fill="#555" text-anchor="middle">{}</text>"##,
                WIDTH / 2.0,
                HEIGHT / 2.0,
                esc("No data: the timeline has no samples.")
            )?;
            return writeln!(out, "</svg>");
        }

        let frame = Frame::new(self, &samples);
        let stats = format!(
            "{} samples over {:.1} s · {} completed · peak {:.1}/s · sustained {:.1}/s · {} master kill(s) · {} partition(s)",
            samples.len(),
            samples[samples.len() - 1].t_s - samples[0].t_s,
            samples[samples.len() - 1].completed,
            self.peak_rate(),
            self.sustained_rate(),
            self.crashes.len(),
            self.partitions.len(),
        );
        writeln!(
            out,
            r##"<text x="{LEFT}" y="40" font-size="11" fill="#555">{}</text>"##,
            esc(&stats)
        )?;

        // Bands first, so the lines are drawn over them.
        let partitions = frame.bands(self.partitions.iter().copied());
        for &(a, b) in &partitions {
            writeln!(
                out,
                r##"<rect class="partition" x="{a:.1}" y="{TOP}" width="{:.1}" height="{}" fill="{PARTITION_COLOR}" fill-opacity="0.18"/>"##,
                b - a,
                BOTTOM - TOP
            )?;
        }
        let down = frame.bands(master_down_intervals(&samples));
        for &(a, b) in &down {
            writeln!(
                out,
                r##"<rect class="master-down" x="{a:.1}" y="{TOP}" width="{:.1}" height="{}" fill="{DOWN_COLOR}" fill-opacity="0.3"/>"##,
                b - a,
                BOTTOM - TOP
            )?;
        }

        frame.render_axes(out, &chart.x_label)?;

        let ts: Vec<f64> = samples.iter().map(|s| s.t_s).collect();
        for series in SERIES {
            let vs: Vec<f64> = samples.iter().map(|s| (series.value)(s) as f64).collect();
            let mut points = String::new();
            for i in downsample(&ts, &vs, PLOT_W_PX) {
                if !points.is_empty() {
                    points.push(' ');
                }
                write!(points, "{:.1},{:.1}", frame.x(ts[i]), frame.y(vs[i]))?;
            }
            writeln!(
                out,
                r#"<polyline class="series {name}" fill="none" stroke="{color}" stroke-width="1.5" stroke-linejoin="round" points="{points}"/>"#,
                name = series.name,
                color = series.color,
            )?;
        }

        // Crashes last, over the lines. Each has a label unless it would
        // overlap the previous one; each has its exact time as a tooltip.
        let mut crashes: Vec<f64> = self
            .crashes
            .iter()
            .copied()
            .filter(|t| t.is_finite())
            .collect();
        crashes.sort_by(f64::total_cmp);
        let mut last_label = f64::NEG_INFINITY;
        for t in crashes {
            let x = frame.x(t);
            writeln!(out, r#"<g class="crash">"#)?;
            writeln!(
                out,
                "<title>{}</title>",
                esc(&format!("{} at {t:.3} s", chart.crash_label))
            )?;
            writeln!(
                out,
                r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{BOTTOM}" stroke="{CRASH_COLOR}" stroke-width="1.2" stroke-dasharray="5 3"/>"#
            )?;
            if x - last_label >= 11.0 {
                last_label = x;
                let (lx, ly) = (x - 2.0, TOP + 4.0);
                writeln!(
                    out,
                    r#"<text x="{lx:.1}" y="{ly:.1}" font-size="9" fill="{CRASH_COLOR}" text-anchor="end" transform="rotate(-90 {lx:.1} {ly:.1})">{}</text>"#,
                    esc(&chart.crash_label)
                )?;
            }
            writeln!(out, "</g>")?;
        }

        // Ticks at the foot, one per pixel column at most.
        let mut ticked = std::collections::BTreeSet::new();
        for &t in chart.ticks.iter().filter(|t| t.is_finite()) {
            let x = frame.x(t).clamp(LEFT, RIGHT);
            if ticked.insert(x.round() as i64) {
                writeln!(
                    out,
                    r#"<line class="tick-mark" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{BOTTOM}" stroke="{TICK_COLOR}" stroke-width="1"/>"#,
                    BOTTOM - 8.0
                )?;
            }
        }

        self.render_legend(
            out,
            chart,
            !down.is_empty(),
            !partitions.is_empty(),
            !ticked.is_empty(),
        )?;
        writeln!(out, "</svg>")
    }

    /// One row above the plot: the three series, then the fault markers
    /// present in this run (a legend for markers absent would only puzzle).
    fn render_legend(
        &self,
        out: &mut String,
        chart: &Chart,
        any_down: bool,
        any_partition: bool,
        any_tick: bool,
    ) -> fmt::Result {
        let mut x = LEFT;
        let y = 56.0;
        let label = |out: &mut String, x: &mut f64, text: &str| -> fmt::Result {
            writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                *x + 22.0,
                y + 4.0,
                esc(text)
            )?;
            // About 6.2 px per character at 11 px, plus a gap.
            *x += 22.0 + 6.2 * text.chars().count() as f64 + 16.0;
            Ok(())
        };
        writeln!(out, r#"<g class="legend">"#)?;
        for series in SERIES {
            writeln!(
                out,
                r#"<line x1="{x:.1}" y1="{y}" x2="{:.1}" y2="{y}" stroke="{}" stroke-width="2"/>"#,
                x + 18.0,
                series.color
            )?;
            label(out, &mut x, series.name)?;
        }
        if !self.crashes.is_empty() {
            writeln!(
                out,
                r#"<line x1="{mid:.1}" y1="{}" x2="{mid:.1}" y2="{}" stroke="{CRASH_COLOR}" stroke-width="1.2" stroke-dasharray="3 2"/>"#,
                y - 6.0,
                y + 6.0,
                mid = x + 9.0
            )?;
            label(out, &mut x, &chart.crash_label)?;
        }
        if any_down {
            writeln!(
                out,
                r#"<rect x="{x:.1}" y="{}" width="18" height="10" fill="{DOWN_COLOR}" fill-opacity="0.3"/>"#,
                y - 5.0
            )?;
            label(out, &mut x, "master down")?;
        }
        if any_partition {
            writeln!(
                out,
                r#"<rect x="{x:.1}" y="{}" width="18" height="10" fill="{PARTITION_COLOR}" fill-opacity="0.18"/>"#,
                y - 5.0
            )?;
            label(out, &mut x, "foreman partition")?;
        }
        if any_tick {
            writeln!(
                out,
                r#"<line x1="{mid:.1}" y1="{}" x2="{mid:.1}" y2="{}" stroke="{TICK_COLOR}" stroke-width="1"/>"#,
                y - 5.0,
                y + 5.0,
                mid = x + 9.0
            )?;
            label(out, &mut x, &chart.ticks_label)?;
        }
        writeln!(out, "</g>")
    }
}

/// The window of [`Timeline::peak_rate`].
const WINDOW_S: f64 = 1.0;

/// The cumulative `completed` count as a piecewise-linear function of time,
/// over the samples with a finite time, in time order.
struct Cumulative {
    t: Vec<f64>,
    v: Vec<f64>,
}

impl Cumulative {
    fn new(samples: &[Sample]) -> Self {
        let mut points: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.t_s.is_finite())
            .map(|s| (s.t_s, s.completed as f64))
            .collect();
        // Stable: samples taken at the same instant keep their order, and the
        // last one is the value from that instant on.
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (t, v) = points.into_iter().unzip();
        Cumulative { t, v }
    }

    /// The count at time `x`, clamped to the first/last sample outside them.
    fn at(&self, x: f64) -> f64 {
        // How many samples are at or before x: the segment is [i-1, i].
        let i = self.t.partition_point(|&t| t <= x);
        if i == 0 {
            return self.v[0];
        }
        if i == self.t.len() {
            return self.v[i - 1];
        }
        let (t0, t1, v0, v1) = (self.t[i - 1], self.t[i], self.v[i - 1], self.v[i]);
        // t1 > x >= t0, so t1 > t0.
        v0 + (v1 - v0) * (x - t0) / (t1 - t0)
    }

    /// The first moment the count reached `target`, interpolated between the
    /// sample below it and the first sample at or above it.
    fn first_reaching(&self, target: f64) -> Option<f64> {
        let i = self.v.iter().position(|&v| v >= target)?;
        if i == 0 {
            return Some(self.t[0]);
        }
        let (t0, t1, v0, v1) = (self.t[i - 1], self.t[i], self.v[i - 1], self.v[i]);
        Some(t0 + (t1 - t0) * (target - v0) / (v1 - v0))
    }
}

// The chart's geometry, in SVG user units (pixels).
const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 72.0;
const PLOT_W_PX: usize = 812;
const RIGHT: f64 = LEFT + PLOT_W_PX as f64;
const TOP: f64 = 68.0;
const BOTTOM: f64 = 344.0;

/// The most points a series' polyline may have: a 100,000-sample run must
/// still make a file a browser opens at once.
const MAX_POINTS: usize = 2_000;
// Downsampling keeps at most 2 points per pixel column, plus both ends.
const _: () = assert!(2 * PLOT_W_PX + 2 <= MAX_POINTS);

const TITLE: &str = "pilotq sim: jobs over time";
const CRASH_COLOR: &str = "#d62728";
const DOWN_COLOR: &str = "#7f7f7f";
const PARTITION_COLOR: &str = "#9467bd";
const TICK_COLOR: &str = "#8c564b";

struct Series {
    name: &'static str,
    color: &'static str,
    value: fn(&Sample) -> u64,
}

const SERIES: [Series; 3] = [
    Series {
        name: "idle",
        color: "#1f77b4",
        value: |s| s.idle,
    },
    Series {
        name: "running",
        color: "#ff7f0e",
        value: |s| s.running,
    },
    Series {
        name: "completed",
        color: "#2ca02c",
        value: |s| s.completed,
    },
];

/// Maps data to the plot area: time on x (the run's extent, faults
/// included), a count on y (from 0 to a round number above the largest).
struct Frame {
    x0: f64,
    x1: f64,
    x_step: f64,
    y_max: f64,
    y_step: f64,
}

impl Frame {
    /// `samples` is non-empty, finite and sorted.
    fn new(tl: &Timeline, samples: &[Sample]) -> Self {
        let times = samples
            .iter()
            .map(|s| s.t_s)
            .chain(tl.crashes.iter().copied())
            .chain(tl.partitions.iter().flat_map(|&(a, b)| [a, b]))
            .filter(|t| t.is_finite());
        let (mut x0, mut x1) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
            (lo.min(t), hi.max(t))
        });
        if x1 - x0 <= 0.0 {
            // A single instant: give it a second of width so it can be drawn.
            x0 -= 0.5;
            x1 += 0.5;
        }
        let x_step = nice_step(x1 - x0, 8);

        let top = samples
            .iter()
            .map(|s| s.idle.max(s.running).max(s.completed))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        // Counts are whole: no tick between two integers.
        let y_step = nice_step(top, 5).max(1.0);
        let y_max = (top / y_step).ceil() * y_step;
        Frame {
            x0,
            x1,
            x_step,
            y_max,
            y_step,
        }
    }

    fn x(&self, t: f64) -> f64 {
        LEFT + (t - self.x0) / (self.x1 - self.x0) * (RIGHT - LEFT)
    }

    fn y(&self, v: f64) -> f64 {
        BOTTOM - v / self.y_max * (BOTTOM - TOP)
    }

    /// Time intervals as pixel bands inside the plot: finite ones only,
    /// clamped, at least a pixel wide so a short one still shows, and merged
    /// when less than a pixel apart so that thousands of them (a flapping
    /// master) do not make thousands of rectangles.
    fn bands(&self, intervals: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
        let mut px: Vec<(f64, f64)> = intervals
            .into_iter()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|(a, b)| {
                let a_px = self.x(a.min(b)).max(LEFT);
                let b_px = self.x(a.max(b)).min(RIGHT).max(a_px + 1.0);
                // Widened at the right edge, a band grows leftwards instead.
                if b_px > RIGHT {
                    (RIGHT - 1.0, RIGHT)
                } else {
                    (a_px, b_px)
                }
            })
            .collect();
        px.sort_by(|p, q| p.0.total_cmp(&q.0));
        let mut merged: Vec<(f64, f64)> = Vec::with_capacity(px.len());
        for (a, b) in px {
            match merged.last_mut() {
                Some(last) if a - last.1 < 1.0 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        merged
    }

    fn render_axes(&self, out: &mut String, x_label: &str) -> fmt::Result {
        writeln!(out, r#"<g class="axes" font-size="11" fill="black">"#)?;
        // Horizontal grid lines and y ticks.
        let scale = if self.y_max >= 1e6 {
            (1e6, "M")
        } else if self.y_max >= 1e4 {
            (1e3, "k")
        } else {
            (1.0, "")
        };
        let label_decimals = decimals_for(self.y_step / scale.0);
        let n_y = (self.y_max / self.y_step).round() as u64;
        for k in 0..=n_y {
            let v = k as f64 * self.y_step;
            let y = self.y(v);
            writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="#e5e5e5"/>"##
            )?;
            writeln!(
                out,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="black"/>"##,
                LEFT - 4.0
            )?;
            let text = if k == 0 {
                "0".to_string()
            } else {
                format!("{:.*}{}", label_decimals, v / scale.0, scale.1)
            };
            writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 7.0,
                y + 4.0,
                esc(&text)
            )?;
        }
        // x ticks at the multiples of the step inside the run's extent; the
        // small slack keeps a tick that lands on an end despite rounding.
        let slack = self.x_step * 1e-9;
        let first = ((self.x0 - slack) / self.x_step).ceil() as i64;
        let last = ((self.x1 + slack) / self.x_step).floor() as i64;
        let x_decimals = decimals_for(self.x_step);
        for k in first..=last {
            let t = k as f64 * self.x_step;
            let x = self.x(t);
            writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{BOTTOM}" x2="{x:.1}" y2="{:.1}" stroke="black"/>"##,
                BOTTOM + 4.0
            )?;
            // "-0" reads oddly: a tick at zero is written "0".
            let t = if t == 0.0 { 0.0 } else { t };
            writeln!(
                out,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                BOTTOM + 17.0,
                esc(&format!("{t:.x_decimals$}"))
            )?;
        }
        // The axes themselves, over the grid.
        writeln!(
            out,
            r#"<path d="M{LEFT},{TOP} V{BOTTOM} H{RIGHT}" fill="none" stroke="black"/>"#
        )?;
        writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (LEFT + RIGHT) / 2.0,
            HEIGHT - 14.0,
            esc(x_label)
        )?;
        let (ax, ay) = (18.0, (TOP + BOTTOM) / 2.0);
        writeln!(
            out,
            r#"<text x="{ax}" y="{ay}" text-anchor="middle" transform="rotate(-90 {ax} {ay})">{}</text>"#,
            esc("jobs")
        )?;
        writeln!(out, "</g>")
    }
}

/// A round step (1, 2 or 5 times a power of ten) cutting `span` into about
/// `ticks` intervals.
fn nice_step(span: f64, ticks: u32) -> f64 {
    let raw = span / f64::from(ticks);
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// The decimals needed to tell ticks `step` apart (0 for a step of 1 or more).
fn decimals_for(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    }
}

/// When the master was down, from the samples: each run of samples reading
/// "down" runs until the next sample reading "up" (or the last sample).
fn master_down_intervals(samples: &[Sample]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut since = None;
    for s in samples {
        match (s.master_up, since) {
            (false, None) => since = Some(s.t_s),
            (true, Some(t)) => {
                out.push((t, s.t_s));
                since = None;
            }
            _ => {}
        }
    }
    if let (Some(t), Some(last)) = (since, samples.last()) {
        out.push((t, last.t_s));
    }
    out
}

/// The indices of the points to draw of a series (`ts` sorted): all of them
/// if there are few, else the first, the last, and in each of `buckets` equal
/// slices of time the lowest and the highest point, in time order. Keeping
/// both extremes of every pixel column draws the same envelope as all the
/// points would, so a one-sample spike still shows.
fn downsample(ts: &[f64], vs: &[f64], buckets: usize) -> Vec<usize> {
    let n = ts.len();
    if n <= MAX_POINTS {
        return (0..n).collect();
    }
    let (t0, span) = (ts[0], ts[n - 1] - ts[0]);
    let bucket = |t: f64| {
        if span > 0.0 {
            (((t - t0) / span * buckets as f64) as usize).min(buckets - 1)
        } else {
            0
        }
    };
    let mut out = Vec::with_capacity(2 * buckets + 2);
    // Indices only grow, so a repeat can only be of the last one pushed.
    let push = |out: &mut Vec<usize>, i: usize| {
        if out.last() != Some(&i) {
            out.push(i);
        }
    };
    push(&mut out, 0);
    let mut i = 0;
    while i < n {
        let b = bucket(ts[i]);
        let (mut lo, mut hi) = (i, i);
        let mut j = i;
        while j < n && bucket(ts[j]) == b {
            if vs[j] < vs[lo] {
                lo = j;
            }
            if vs[j] > vs[hi] {
                hi = j;
            }
            j += 1;
        }
        push(&mut out, lo.min(hi));
        push(&mut out, lo.max(hi));
        i = j;
    }
    push(&mut out, n - 1);
    out
}

/// Escapes text for SVG (XML) content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, idle: u64, running: u64, completed: u64, master_up: bool) -> Sample {
        Sample {
            t_s,
            idle,
            running,
            completed,
            master_up,
        }
    }

    /// A timeline whose cumulative `completed` is `f(t)`, sampled at `times`.
    fn from_fn(times: impl IntoIterator<Item = f64>, f: impl Fn(f64) -> f64) -> Timeline {
        Timeline {
            samples: times
                .into_iter()
                .map(|t| sample(t, 0, 0, f(t).round() as u64, true))
                .collect(),
            ..Timeline::default()
        }
    }

    fn close(got: f64, want: f64, rel: f64) -> bool {
        (got - want).abs() <= rel * want.abs()
    }

    /// Irregular times from 0 to `end`: steps cycling through 0.07, 0.31,
    /// 0.13 and 0.5 s times `scale`, as a late sampler would produce.
    fn irregular_times(end: f64, scale: f64) -> Vec<f64> {
        let steps = [0.07 * scale, 0.31 * scale, 0.13 * scale, 0.5 * scale];
        let mut t = 0.0;
        let mut out = vec![];
        for k in 0.. {
            if t > end {
                break;
            }
            out.push(t);
            t += steps[k % steps.len()];
        }
        out.push(end);
        out
    }

    #[test]
    fn a_steady_ramp_has_equal_peak_and_sustained_rates() {
        // 100 completions a second for 100 s, sampled every 0.1 s.
        let tl = from_fn((0..=1000).map(|k| k as f64 / 10.0), |t| 100.0 * t);
        let (peak, sustained) = (tl.peak_rate(), tl.sustained_rate());
        assert!(close(peak, 100.0, 0.01), "peak {peak}");
        assert!(close(sustained, 100.0, 0.01), "sustained {sustained}");
    }

    #[test]
    fn irregular_sampling_does_not_change_the_rates() {
        let tl = from_fn(irregular_times(60.0, 1.0), |t| 100.0 * t);
        let (peak, sustained) = (tl.peak_rate(), tl.sustained_rate());
        assert!(close(peak, 100.0, 0.01), "peak {peak}");
        assert!(close(sustained, 100.0, 0.01), "sustained {sustained}");

        // Nor does the order the samples come in.
        let mut shuffled = tl.clone();
        shuffled.samples.reverse();
        assert_eq!(shuffled.peak_rate(), peak);
        assert_eq!(shuffled.sustained_rate(), sustained);
    }

    #[test]
    fn a_burst_has_a_peak_above_the_sustained_rate() {
        // 10/s, then 500 in the second from 20 s to 21 s, then 10/s to 40 s:
        // 890 in all. The 10% mark (89) is reached at 8.9 s and the 90% one
        // (801) at 31.1 s, so the sustained rate is 712 / 22.2.
        let c = |t: f64| {
            if t < 20.0 {
                10.0 * t
            } else if t < 21.0 {
                200.0 + 500.0 * (t - 20.0)
            } else {
                700.0 + 10.0 * (t - 21.0)
            }
        };
        // Sampled at most 0.1 s apart: the burst's edges fall between
        // samples and are smeared over up to 0.1 s, so a little under 500
        // (never above: the busiest second holds exactly 500).
        let tl = from_fn(irregular_times(40.0, 0.2), c);
        let (peak, sustained) = (tl.peak_rate(), tl.sustained_rate());
        assert!(peak > 450.0 && peak <= 500.0 + 1e-9, "peak {peak}");
        assert!(
            close(sustained, 712.0 / 22.2, 0.01),
            "sustained {sustained}"
        );

        // Sampled exactly on the burst's edges the peak is exact.
        let tl = from_fn((0..=400).map(|k| k as f64 / 10.0), c);
        assert!(
            close(tl.peak_rate(), 500.0, 1e-6),
            "peak {}",
            tl.peak_rate()
        );
    }

    #[test]
    fn the_busiest_window_may_start_between_samples() {
        // 50/s for 2 s, 200/s for 0.5 s, then nothing. The busiest second is
        // [1.5, 2.5]: 25 + 100 = 125. Windows starting at a sample find at
        // most 100 ([2, 3]).
        let tl = Timeline {
            samples: [(0.0, 0), (2.0, 100), (2.5, 200), (5.0, 200)]
                .map(|(t, c)| sample(t, 0, 0, c, true))
                .to_vec(),
            ..Timeline::default()
        };
        assert!(close(tl.peak_rate(), 125.0, 1e-9), "{}", tl.peak_rate());
    }

    #[test]
    fn rates_are_zero_when_undefined() {
        assert_eq!(Timeline::default().peak_rate(), 0.0);
        assert_eq!(Timeline::default().sustained_rate(), 0.0);
        let one = from_fn([3.0], |_| 50.0);
        assert_eq!(one.peak_rate(), 0.0);
        assert_eq!(one.sustained_rate(), 0.0);
        // Nothing completed.
        let idle = from_fn((0..100).map(f64::from), |_| 0.0);
        assert_eq!(idle.peak_rate(), 0.0);
        assert_eq!(idle.sustained_rate(), 0.0);
        // Everything done at the first sample: 10% and 90% reached together.
        let done = from_fn((0..100).map(f64::from), |_| 1000.0);
        assert_eq!(done.sustained_rate(), 0.0);
    }

    #[test]
    fn a_run_shorter_than_a_second_peaks_at_what_it_completed() {
        let tl = from_fn([0.0, 0.25, 0.5], |t| 80.0 * t);
        assert!(close(tl.peak_rate(), 40.0, 1e-9), "{}", tl.peak_rate());
    }

    fn csv(tl: &Timeline) -> String {
        let mut out = vec![];
        tl.write_csv_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_has_the_header_and_every_row_in_time_order() {
        let tl = Timeline {
            samples: vec![
                sample(0.0, 10, 0, 0, true),
                sample(1.0, 6, 4, 0, true),
                sample(2.0, 6, 0, 1, false),
                sample(3.0, 2, 3, 5, true),
                sample(4.0, 0, 0, 10, true),
            ],
            crashes: vec![1.5],
            // The second starts when a sample is taken: it comes first.
            partitions: vec![(0.5, 2.5), (3.0, 3.25)],
        };
        let want = "\
t_s,idle,running,completed,master_up,event
0.000,10,0,0,1,
0.500,,,,,partition_start
1.000,6,4,0,1,
1.500,,,,,master_killed
2.000,6,0,1,0,
2.500,,,,,partition_end
3.000,,,,,partition_start
3.000,2,3,5,1,
3.250,,,,,partition_end
4.000,0,0,10,1,
";
        assert_eq!(csv(&tl), want);

        // Through the file too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.csv");
        tl.write_csv(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
    }

    #[test]
    fn csv_sorts_rows_given_out_of_order_and_every_row_has_six_fields() {
        let tl = Timeline {
            samples: vec![sample(2.0, 1, 1, 1, true), sample(1.0, 2, 0, 0, true)],
            crashes: vec![1.9996, 0.25],
            partitions: vec![],
        };
        let text = csv(&tl);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "t_s,idle,running,completed,master_up,event",
                "0.250,,,,,master_killed",
                "1.000,2,0,0,1,",
                "2.000,,,,,master_killed",
                "2.000,1,1,1,1,",
            ]
        );
        assert!(lines.iter().all(|l| l.split(',').count() == 6));
    }

    #[test]
    fn an_empty_timeline_has_a_header_only_csv() {
        assert_eq!(
            csv(&Timeline::default()),
            "t_s,idle,running,completed,master_up,event\n"
        );
    }

    /// Checks what a browser's XML parser would reject: unbalanced or
    /// misnested tags, unquoted or unterminated attributes, a bare `<` or `&`
    /// in text, anything after the root element. Not a full XML parser.
    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg"), "does not start with <svg");
        assert!(
            svg.trim_end().ends_with("</svg>"),
            "does not end with </svg>"
        );
        let check_entities = |s: &str| {
            for (i, _) in s.match_indices('&') {
                let rest = &s[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| rest.starts_with(e)),
                    "bare & at {:?}",
                    &rest[..rest.len().min(20)]
                );
            }
        };
        let mut stack: Vec<&str> = vec![];
        let mut closed_root = false;
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            assert!(!text.contains('>'), "stray > in {text:?}");
            check_entities(text);
            assert!(
                !closed_root || text.trim().is_empty(),
                "text after the root"
            );
            let close = rest[open..].find('>').expect("unterminated tag") + open;
            let tag = &rest[open + 1..close];
            assert!(!closed_root, "a tag after the root: <{tag}>");
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "unbalanced quotes: <{tag}>"
            );
            check_entities(tag);
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.trim()), "misnested </{name}>");
                closed_root = stack.is_empty();
            } else {
                let name = tag.split_whitespace().next().expect("empty tag");
                let name = name.trim_end_matches('/');
                assert!(
                    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                    "bad tag name {name:?}"
                );
                if !tag.ends_with('/') {
                    stack.push(name);
                } else if stack.is_empty() {
                    closed_root = true;
                }
            }
            rest = &rest[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert!(rest.trim().is_empty(), "text after the root");
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "non-finite number"
        );
    }

    #[test]
    fn the_checker_rejects_broken_svg() {
        for bad in [
            "<svg><g></svg>",
            "<svg><text>a < b</text></svg>",
            "<svg><text>a & b</text></svg>",
            "<svg><rect x=\"1/></svg>",
            "<svg></svg><svg></svg>",
            "<g></g>",
        ] {
            let r = std::panic::catch_unwind(|| assert_well_formed(bad));
            assert!(r.is_err(), "accepted {bad:?}");
        }
        assert_well_formed("<svg a=\"&amp;\"><g><text>x &lt; y</text></g><rect/></svg>\n");
    }

    /// The `points` of each polyline, as (x, y) pairs.
    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.match_indices("<polyline")
            .map(|(i, _)| {
                let tag = &svg[i..i + svg[i..].find("/>").unwrap()];
                let p = tag.find("points=\"").unwrap() + "points=\"".len();
                let points = &tag[p..p + tag[p..].find('"').unwrap()];
                points
                    .split_whitespace()
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    fn faulty_run() -> Timeline {
        let mut samples: Vec<Sample> = (0..=600)
            .map(|k| {
                let t = k as f64 / 10.0;
                let done = (t * 100.0) as u64;
                sample(t, 6000 - done.min(6000), 400, done, true)
            })
            .collect();
        for s in &mut samples[200..230] {
            s.master_up = false;
        }
        Timeline {
            samples,
            crashes: vec![19.95],
            partitions: vec![(40.0, 45.5)],
        }
    }

    #[test]
    fn svg_has_the_series_axes_and_fault_markers() {
        let tl = faulty_run();
        let svg = tl.svg_string();
        assert_well_formed(&svg);
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 3);
        // Few samples: every one drawn, left to right inside the plot.
        for line in &lines {
            assert_eq!(line.len(), tl.samples.len());
            assert!(line.windows(2).all(|w| w[0].0 <= w[1].0));
            assert!(line
                .iter()
                .all(|&(x, y)| (LEFT..=RIGHT).contains(&x) && (TOP..=BOTTOM).contains(&y)));
        }
        for class in ["series idle", "series running", "series completed"] {
            assert!(svg.contains(class), "no {class}");
        }
        assert_eq!(svg.matches(r#"<g class="crash">"#).count(), 1);
        assert!(svg.contains("master killed at 19.950 s"));
        assert_eq!(svg.matches(r#"class="partition""#).count(), 1);
        assert_eq!(svg.matches(r#"class="master-down""#).count(), 1);
        // Round ticks: 0 to 6000 by 2000 on y, 0 to 60 s by 10 on x.
        for label in [">2000<", ">6000<", ">10<", ">60<", ">time since start (s)<"] {
            assert!(svg.contains(label), "no tick {label}");
        }
        assert!(svg.contains(">idle<") && svg.contains(">foreman partition<"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.svg");
        tl.write_svg(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), svg);
    }

    #[test]
    fn svg_without_faults_has_no_fault_markers() {
        let mut tl = faulty_run();
        tl.crashes.clear();
        tl.partitions.clear();
        tl.samples.iter_mut().for_each(|s| s.master_up = true);
        let svg = tl.svg_string();
        assert_well_formed(&svg);
        assert_eq!(polylines(&svg).len(), 3);
        for absent in [
            r#"class="crash""#,
            r#"class="partition""#,
            r#"class="master-down""#,
            ">master killed<",
            ">foreman partition<",
        ] {
            assert!(!svg.contains(absent), "has {absent}");
        }
    }

    #[test]
    fn a_large_timeline_makes_a_small_svg_that_keeps_its_peaks() {
        // 100,000 samples, 10 ms apart, noisy, with a one-sample spike in
        // `running` that sets the y scale.
        let mut x: u64 = 1;
        let samples: Vec<Sample> = (0..100_000u64)
            .map(|k| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = (x >> 33) % 50;
                let running = if k == 54_321 { 20_000 } else { 1000 + noise };
                sample(
                    k as f64 / 100.0,
                    5000 - k / 20,
                    running,
                    k / 10,
                    k % 7000 > 100,
                )
            })
            .collect();
        let tl = Timeline {
            samples,
            crashes: vec![100.0, 100.01, 700.0],
            partitions: vec![(300.0, 320.0)],
        };
        let svg = tl.svg_string();
        assert_well_formed(&svg);
        assert!(svg.len() < 250_000, "{} bytes", svg.len());
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 3);
        for line in &lines {
            assert!(line.len() <= MAX_POINTS, "{} points", line.len());
            assert!(line.len() >= PLOT_W_PX, "{} points", line.len());
        }
        // The spike is the top of the scale: the running line reaches it.
        let top = lines[1].iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        assert_eq!(top, TOP);
        // Two crashes a pixel apart: both drawn, one label.
        assert_eq!(svg.matches(r#"<g class="crash">"#).count(), 3);
        assert_eq!(svg.matches(">master killed</text>").count(), 2 + 1);
    }

    #[test]
    fn downsampling_keeps_both_ends_and_every_extreme() {
        let n = 100_000;
        let ts: Vec<f64> = (0..n).map(|k| k as f64 * 0.01).collect();
        let mut vs = vec![500.0; n];
        vs[12_345] = 1000.0;
        vs[67_890] = 0.0;
        let kept = downsample(&ts, &vs, PLOT_W_PX);
        assert!(kept.len() <= MAX_POINTS);
        assert_eq!(kept.first(), Some(&0));
        assert_eq!(kept.last(), Some(&(n - 1)));
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "not in order");
        assert!(kept.contains(&12_345) && kept.contains(&67_890));
        // Few points are all kept.
        assert_eq!(
            downsample(&ts[..50], &vs[..50], PLOT_W_PX),
            (0..50).collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_empty_timeline_makes_a_valid_svg_saying_so() {
        let svg = Timeline::default().svg_string();
        assert_well_formed(&svg);
        assert!(svg.contains("No data"));
        assert_eq!(svg.matches("<polyline").count(), 0);
        // Faults but no samples: still nothing to plot.
        let tl = Timeline {
            crashes: vec![1.0],
            ..Timeline::default()
        };
        assert!(tl.svg_string().contains("No data"));
    }

    #[test]
    fn a_single_sample_is_drawn() {
        let tl = Timeline {
            samples: vec![sample(5.0, 3, 2, 1, true)],
            ..Timeline::default()
        };
        let svg = tl.svg_string();
        assert_well_formed(&svg);
        assert_eq!(
            polylines(&svg).iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 1, 1]
        );
    }

    #[test]
    fn a_chart_can_say_other_things_and_mark_ticks() {
        let tl = faulty_run();
        let chart = Chart {
            title: "pilotq journal: <x>".into(),
            crash_label: "master restarted".into(),
            x_label: "seconds since 2026-12-03".into(),
            // Two a tenth of a pixel apart: one drawn.
            ticks: vec![5.0, 5.001, 30.0, f64::NAN],
            ticks_label: "holder lost".into(),
        };
        let svg = tl.svg_string_with(&chart);
        assert_well_formed(&svg);
        assert!(svg.contains("<title>pilotq journal: &lt;x&gt;</title>"));
        assert!(svg.contains("master restarted at 19.950 s"));
        assert!(!svg.contains("master killed"));
        assert!(svg.contains(">seconds since 2026-12-03<"));
        assert_eq!(svg.matches(r#"class="tick-mark""#).count(), 2);
        assert!(svg.contains(">holder lost<"));
        // The default chart is the simulator's, without ticks.
        assert_eq!(tl.svg_string(), tl.svg_string_with(&Chart::default()));
        assert!(!tl.svg_string().contains("tick-mark"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc(r#"a<b & "c" 'd'>"#),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(100.0, 5), 20.0);
        assert_eq!(nice_step(60.0, 8), 10.0);
        assert_eq!(nice_step(7.3, 5), 2.0);
        assert!((nice_step(0.9, 8) - 0.2).abs() < 1e-12);
        assert_eq!(decimals_for(0.2), 1);
        assert_eq!(decimals_for(0.05), 2);
        assert_eq!(decimals_for(20.0), 0);
    }
}
