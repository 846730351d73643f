//! Stacked bar charts drawn on the server as SVG: no script, no inline style (colours come from
//! the stylesheet's classes), readable with JavaScript off.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use maud::{html, Markup, PreEscaped};

/// One bar: what happened to the requests of one time bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bar {
    pub(crate) allowed: u64,
    pub(crate) would: u64,
    pub(crate) blocked: u64,
}

impl Bar {
    fn total(self) -> u64 {
        self.allowed + self.would + self.blocked
    }
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

/// The start of the bucket `width` wide that holds `t`.
pub(crate) fn floor(t: SystemTime, width: Duration) -> SystemTime {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let w = width.as_secs().max(1);
    UNIX_EPOCH + Duration::from_secs(since - since % w)
}

/// The smallest of 1, 2, 5 × 10ⁿ at least `n`: the chart's top.
fn nice(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= n {
                return step.saturating_mul(m);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// `hh:mm` in UTC.
fn clock(t: SystemTime) -> String {
    let s = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    format!("{:02}:{:02}", s / 3600 % 24, s / 60 % 60)
}

/// A chart of `bars`, the first starting at `start`, each `width` long; a label under every
/// `label_every`-th bar.
pub(crate) fn bars(
    title: &str,
    start: SystemTime,
    width: Duration,
    bars: &[Bar],
    label_every: usize,
) -> Markup {
    let top = nice(bars.iter().map(|b| b.total()).max().unwrap_or(0).max(1));
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = plot_w / bars.len().max(1) as f64;
    let bar_w = (slot * 0.8).max(1.0);
    let y = |v: u64| plot_h * v as f64 / top as f64;
    let total: u64 = bars.iter().map(|b| b.total()).sum();
    let refused: u64 = bars.iter().map(|b| b.blocked).sum();
    let label = format!("{title}: {total} requests, {refused} refused");
    // Rectangles are written by hand: a few hundred of them, numbers only.
    let mut rects = String::with_capacity(bars.len() * 200);
    for (i, bar) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let at = start + width * i as u32;
        let _ = write!(
            rects,
            "<g><title>{} UTC: {} allowed, {} would be refused, {} refused</title>",
            clock(at),
            bar.allowed,
            bar.would,
            bar.blocked
        );
        let mut base = TOP + plot_h;
        for (class, v) in [
            ("allowed", bar.allowed),
            ("would", bar.would),
            ("blocked", bar.blocked),
        ] {
            if v == 0 {
                continue;
            }
            let h = y(v).max(1.0);
            base -= h;
            let _ = write!(
                rects,
                r#"<rect class="{class}" x="{x:.1}" y="{base:.1}" width="{bar_w:.1}" height="{h:.1}"/>"#
            );
        }
        rects.push_str("</g>");
    }
    let labels: Vec<(f64, String)> = (0..bars.len())
        .step_by(label_every.max(1))
        .map(|i| (LEFT + slot * i as f64, clock(start + width * i as u32)))
        .collect();
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(label)
            xmlns="http://www.w3.org/2000/svg" {
            line.axis x1=(LEFT) y1=(TOP + plot_h) x2=(WIDTH) y2=(TOP + plot_h) {}
            line.axis x1=(LEFT) y1=(TOP) x2=(WIDTH) y2=(TOP) {}
            text x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (top) }
            text x=(LEFT - 6.0) y=(TOP + plot_h) text-anchor="end" { "0" }
            (PreEscaped(rects))
            @for (x, text) in &labels {
                text x=(x) y=(HEIGHT - 4.0) { (text) }
            }
        }
        div.legend {
            span.allowed { "allowed" }
            span.would { "would be refused (monitor)" }
            span.blocked { "refused" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tops_are_round() {
        assert_eq!(nice(1), 1);
        assert_eq!(nice(3), 5);
        assert_eq!(nice(7), 10);
        assert_eq!(nice(11), 20);
        assert_eq!(nice(180), 200);
        assert_eq!(nice(u64::MAX), u64::MAX);
    }

    #[test]
    fn a_chart_has_a_bar_group_per_bucket_and_stacks_its_parts() {
        let start = UNIX_EPOCH + Duration::from_secs(3600);
        let series = [
            Bar {
                allowed: 5,
                would: 0,
                blocked: 5,
            },
            Bar::default(),
            Bar {
                allowed: 1,
                would: 2,
                blocked: 0,
            },
        ];
        let svg = bars("t", start, Duration::from_secs(60), &series, 1).into_string();
        assert_eq!(svg.matches("<g>").count(), 3);
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("01:00 UTC: 5 allowed, 0 would be refused, 5 refused"));
        assert!(svg.contains("01:02 UTC: 1 allowed, 2 would be refused"));
        assert!(svg.contains("aria-label=\"t: 13 requests, 5 refused\""));
    }

    #[test]
    fn buckets_start_on_their_width() {
        let t = UNIX_EPOCH + Duration::from_secs(7384);
        assert_eq!(
            floor(t, Duration::from_secs(3600)),
            UNIX_EPOCH + Duration::from_secs(7200)
        );
        assert_eq!(
            floor(t, Duration::from_secs(60)),
            UNIX_EPOCH + Duration::from_secs(7380)
        );
    }
}
