//! The usage chart (SPEC §11.3): a series of buckets drawn on the server as an inline SVG of
//! stacked bars (valid below, refused above), so it needs no script and no inline style.
//!
//! Everything drawn is a number or a time this module formats itself: a refusal's code, or
//! anything else from the database, never reaches the SVG (the page's table names the codes).
//! The one attribute holding words, `aria-label`, is escaped all the same.

use crate::service::usage::Point;
use chrono::DateTime;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The drawing's own coordinates (`viewBox`); CSS scales it to the width of its container.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 180.0;
/// Room for the y axis label on the left and the time labels below.
const LEFT: f64 = 40.0;
const RIGHT: f64 = 6.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;
pub const PLOT_HEIGHT: f64 = HEIGHT - TOP - BOTTOM;
const PLOT_WIDTH: f64 = WIDTH - LEFT - RIGHT;
/// About this many time labels along the x axis.
const X_LABELS: usize = 4;

/// What a series adds up to: the chart's `aria-label` and the table beneath it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub valid: i64,
    /// Refused verifications by verify code.
    pub refused: BTreeMap<String, i64>,
    pub credits_spent: i64,
}

impl Totals {
    pub fn of(points: &[Point]) -> Self {
        let mut t = Self::default();
        for p in points {
            t.valid += p.valid;
            t.credits_spent += p.credits_spent;
            for (code, n) in &p.denied {
                *t.refused.entry(code.clone()).or_default() += n;
            }
        }
        t
    }

    pub fn refused_total(&self) -> i64 {
        self.refused.values().sum()
    }

    pub fn total(&self) -> i64 {
        self.valid + self.refused_total()
    }

    /// "312 verifications in the last 24 hours: 300 valid, 12 refused".
    pub fn summary(&self, span: &str) -> String {
        match self.total() {
            0 => format!("No verifications in the last {span}"),
            1 => format!(
                "1 verification in the last {span}: {} valid, {} refused",
                self.valid,
                self.refused_total()
            ),
            n => format!(
                "{n} verifications in the last {span}: {} valid, {} refused",
                self.valid,
                self.refused_total()
            ),
        }
    }
}

/// The seconds one bucket covers (an hour when the series cannot tell).
fn step(points: &[Point]) -> i64 {
    match points {
        [a, b, ..] if b.at > a.at => b.at - a.at,
        _ => 3_600,
    }
}

/// How long a series covers, in words: "24 hours", "30 days".
pub fn span_words(points: &[Point]) -> String {
    let seconds = step(points) * points.len() as i64;
    let (n, unit) = if seconds >= 2 * 86_400 && seconds % 86_400 == 0 {
        (seconds / 86_400, "day")
    } else if seconds >= 3_600 {
        (seconds / 3_600, "hour")
    } else {
        (seconds / 60, "minute")
    };
    if n == 1 {
        unit.to_owned()
    } else {
        format!("{n} {unit}s")
    }
}

/// One bucket's bar in drawing coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub width: f64,
    pub valid_height: f64,
    pub refused_height: f64,
}

/// The bars of a series, each as tall as its share of the busiest bucket, and that bucket's
/// count (0 when nothing happened: then every bar is flat, and nothing is divided by it).
pub fn layout(points: &[Point]) -> (Vec<Bar>, i64) {
    let refused = |p: &Point| p.denied.values().sum::<i64>();
    let max = points
        .iter()
        .map(|p| p.valid + refused(p))
        .max()
        .unwrap_or(0);
    let slot = PLOT_WIDTH / points.len().max(1) as f64;
    let scale = |n: i64| {
        if max > 0 {
            n as f64 * PLOT_HEIGHT / max as f64
        } else {
            0.0
        }
    };
    let bars = points
        .iter()
        .enumerate()
        .map(|(i, p)| Bar {
            x: LEFT + i as f64 * slot + slot * 0.1,
            width: slot * 0.8,
            valid_height: scale(p.valid),
            refused_height: scale(refused(p)),
        })
        .collect();
    (bars, max)
}

/// A coordinate as SVG wants it: one decimal, never NaN or infinite.
fn num(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// A bucket's start for people, in UTC: the hour, or the day for a series of days.
fn when(at: i64, step: i64) -> String {
    let t = DateTime::from_timestamp(at, 0).unwrap_or_default();
    if step >= 86_400 {
        t.format("%m-%d").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

/// Text for an XML attribute or element.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The chart of `points` as an `<svg>` element, to be placed in a page as it is.
pub fn svg(points: &[Point]) -> String {
    let totals = Totals::of(points);
    let label = if points.is_empty() {
        "No verifications".to_owned()
    } else {
        escape(&totals.summary(&span_words(points)))
    };
    let (bars, max) = layout(points);
    let step = step(points);
    let base = TOP + PLOT_HEIGHT;
    let mut s = String::new();
    // `write!` to a String cannot fail.
    let _ = write!(
        s,
        r#"<svg class="usage-chart" viewBox="0 0 {w} {h}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">"#,
        w = num(WIDTH),
        h = num(HEIGHT),
    );
    // The y axis: the busiest bucket's count at the top, 0 at the baseline.
    let _ = write!(
        s,
        r#"<g class="axis" font-size="11" fill="currentColor"><text x="{x}" y="{top}" text-anchor="end" dominant-baseline="hanging">{max}</text><text x="{x}" y="{base}" text-anchor="end">0</text>"#,
        x = num(LEFT - 6.0),
        top = num(TOP),
        base = num(base),
    );
    let every = points.len().div_ceil(X_LABELS).max(1);
    for (p, b) in points.iter().zip(&bars).step_by(every) {
        let _ = write!(
            s,
            r#"<text x="{x}" y="{y}" text-anchor="start">{t}</text>"#,
            x = num(b.x),
            y = num(HEIGHT - 6.0),
            t = when(p.at, step),
        );
    }
    let _ = write!(
        s,
        r#"<line class="baseline" x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="currentColor" stroke-width="1"/></g>"#,
        x1 = num(LEFT),
        x2 = num(LEFT + PLOT_WIDTH),
        y = num(base),
    );
    if max == 0 {
        let _ = write!(
            s,
            r#"<text class="empty" x="{x}" y="{y}" text-anchor="middle" font-size="14" fill="currentColor">No verifications</text>"#,
            x = num(LEFT + PLOT_WIDTH / 2.0),
            y = num(TOP + PLOT_HEIGHT / 2.0),
        );
    }
    for (p, b) in points.iter().zip(&bars) {
        let refused: i64 = p.denied.values().sum();
        let _ = write!(
            s,
            r#"<g class="bucket"><title>{t} UTC: {v} valid, {r} refused</title><rect class="hit" x="{x}" y="{top}" width="{w}" height="{ph}" fill="transparent"/>"#,
            t = when(p.at, step),
            v = p.valid,
            r = refused,
            x = num(b.x),
            top = num(TOP),
            w = num(b.width),
            ph = num(PLOT_HEIGHT),
        );
        if b.valid_height > 0.0 {
            let _ = write!(
                s,
                r##"<rect class="bar-valid" x="{x}" y="{y}" width="{w}" height="{h}" fill="#2b8a3e"/>"##,
                x = num(b.x),
                y = num(base - b.valid_height),
                w = num(b.width),
                h = num(b.valid_height),
            );
        }
        if b.refused_height > 0.0 {
            let _ = write!(
                s,
                r##"<rect class="bar-refused" x="{x}" y="{y}" width="{w}" height="{h}" fill="#c92a2a"/>"##,
                x = num(b.x),
                y = num(base - b.valid_height - b.refused_height),
                w = num(b.width),
                h = num(b.refused_height),
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(i: i64, valid: i64, denied: &[(&str, i64)]) -> Point {
        Point {
            at: 1_767_225_600 + i * 3_600,
            valid,
            denied: denied.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            credits_spent: valid,
        }
    }

    fn day(f: impl Fn(i64) -> Point) -> Vec<Point> {
        (0..24).map(f).collect()
    }

    /// The values of `attr` on every element of `class`, in order.
    fn attrs(svg: &str, class: &str, attr: &str) -> Vec<f64> {
        svg.split(&format!(r#"class="{class}""#))
            .skip(1)
            .map(|rest| {
                let tag = &rest[..rest.find('>').unwrap()];
                let v = tag.split(&format!(r#" {attr}=""#)).nth(1).unwrap();
                v[..v.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn bars_are_as_tall_as_their_share_of_the_busiest_bucket() {
        let points = day(|i| match i {
            3 => hour(i, 40, &[]),
            4 => hour(i, 20, &[("RATE_LIMITED", 10), ("USAGE_EXCEEDED", 10)]),
            5 => hour(i, 10, &[]),
            _ => hour(i, 0, &[]),
        });
        let (bars, max) = layout(&points);
        assert_eq!(max, 40);
        assert_eq!(bars[3].valid_height, PLOT_HEIGHT);
        assert_eq!(bars[4].valid_height, PLOT_HEIGHT / 2.0);
        assert_eq!(bars[4].refused_height, PLOT_HEIGHT / 2.0);
        assert_eq!(bars[5].valid_height, PLOT_HEIGHT / 4.0);
        assert!(bars.iter().enumerate().all(
            |(i, b)| (3..=5).contains(&i) || (b.valid_height == 0.0 && b.refused_height == 0.0)
        ));
        // Left to right, one slot each, inside the drawing.
        assert!(bars.windows(2).all(|w| w[0].x < w[1].x));
        assert!(bars[23].x + bars[23].width <= WIDTH);

        let svg = svg(&points);
        assert_eq!(
            attrs(&svg, "bar-valid", "height"),
            [PLOT_HEIGHT, PLOT_HEIGHT / 2.0, PLOT_HEIGHT / 4.0]
        );
        assert_eq!(attrs(&svg, "bar-refused", "height"), [PLOT_HEIGHT / 2.0]);
        // Stacked: the refused part sits right on top of the valid part.
        let valid_top = attrs(&svg, "bar-valid", "y")[1];
        let refused = attrs(&svg, "bar-refused", "y")[0];
        assert_eq!(refused + PLOT_HEIGHT / 2.0, valid_top);
        assert_eq!(svg.matches("<title>").count(), 24, "one title per bucket");
        assert!(svg.contains("<title>04:00 UTC: 20 valid, 20 refused</title>"));
        assert!(!svg.contains("No verifications"));
    }

    #[test]
    fn the_label_sums_up_the_series() {
        let points = day(|i| match i {
            0 => hour(i, 300, &[("RATE_LIMITED", 10)]),
            1 => hour(i, 0, &[("USAGE_EXCEEDED", 2)]),
            _ => hour(i, 0, &[]),
        });
        let svg = svg(&points);
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.contains(r#"role="img""#));
        assert!(
            svg.contains(
                r#"aria-label="312 verifications in the last 24 hours: 300 valid, 12 refused""#
            ),
            "{svg}"
        );
        assert!(
            svg.contains(">310</text>"),
            "the y axis shows the busiest bucket"
        );
        for label in ["00:00", "06:00", "12:00", "18:00"] {
            assert!(svg.contains(&format!(">{label}</text>")), "x label {label}");
        }
        let t = Totals::of(&points);
        assert_eq!(
            (t.valid, t.refused_total(), t.credits_spent),
            (300, 12, 300)
        );
        assert_eq!(t.refused["RATE_LIMITED"], 10);
    }

    #[test]
    fn nothing_to_draw_is_an_empty_chart_that_says_so() {
        for points in [vec![], day(|i| hour(i, 0, &[]))] {
            let svg = svg(&points);
            assert!(svg.contains(">No verifications</text>"), "{svg}");
            assert!(!svg.contains("bar-valid") && !svg.contains("bar-refused"));
            assert!(
                !svg.contains("NaN") && !svg.contains("inf"),
                "no division by a zero maximum: {svg}"
            );
            assert!(svg.contains(r#"aria-label="No verifications"#));
            assert!(svg.ends_with("</svg>"));
        }
        assert!(svg(&day(|i| hour(i, 0, &[])))
            .contains(r#"aria-label="No verifications in the last 24 hours""#));
        let (bars, max) = layout(&day(|i| hour(i, 0, &[])));
        assert_eq!(max, 0);
        assert!(bars
            .iter()
            .all(|b| b.valid_height == 0.0 && b.x.is_finite() && b.width > 0.0));
    }

    #[test]
    fn only_numbers_reach_the_drawing() {
        // A code is data from the database: the chart never prints one.
        let points = day(|i| {
            hour(
                i,
                1,
                &[("<script>alert(1)</script>", 2), ("RATE_LIMITED", 1)],
            )
        });
        let svg = svg(&points);
        assert!(!svg.contains("script") && !svg.contains("RATE_LIMITED"));
        // Element text is digits, times and the chart's own words; nothing else.
        for text in svg.split('>').filter_map(|s| s.split('<').next()) {
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_digit() || " :UTCvalidrefused,".contains(c)),
                "unexpected text in the chart: {text:?}"
            );
        }
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn spans_in_words() {
        assert_eq!(span_words(&day(|i| hour(i, 0, &[]))), "24 hours");
        let days: Vec<Point> = (0..30)
            .map(|i| Point {
                at: i * 86_400,
                ..Point::default()
            })
            .collect();
        assert_eq!(span_words(&days), "30 days");
        assert_eq!(span_words(&[hour(0, 0, &[])]), "hour");
        let svg = svg(&days);
        assert!(svg.contains(">01-01</text>"), "days are labelled by date");
    }
}
