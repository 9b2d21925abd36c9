//! The flood bench's PNG charts (plotters).

use anyhow::Result;
use serde_json::Value;

use super::filters::{DROP_FILTERS, SURVIVAL_FILTERS};

mod plot {
    use plotters::{coord::ranged1d::SegmentValue, prelude::*, style::FontStyle};

    const W: u32 = 900;
    const H: u32 = 540;
    const COLORS: [RGBColor; 7] = [
        RGBColor(214, 39, 40),   // no filter: red
        RGBColor(255, 127, 14),  // nftables: orange
        RGBColor(127, 127, 127), // XDP_DROP: grey
        RGBColor(148, 103, 189), // textbook: purple
        RGBColor(44, 160, 44),   // xdp-filter: green
        RGBColor(31, 119, 180),  // waf XDP: blue
        RGBColor(23, 190, 207),  // waf XDP 1M: cyan
    ];

    pub fn color(i: usize) -> RGBColor {
        COLORS[i % COLORS.len()]
    }

    pub fn init() {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    }

    type R = Result<(), Box<dyn std::error::Error>>;

    /// A named line of points in a colour.
    pub type Series = (String, Vec<(f64, f64)>, RGBColor);

    /// Vertical bars with their value printed above each.
    pub fn bars(
        path: &std::path::Path,
        title: &str,
        y_label: &str,
        bars: &[(String, f64, RGBColor)],
        fmt: &dyn Fn(f64) -> String,
    ) -> R {
        let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
        root.fill(&WHITE)?;
        let ymax = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9) * 1.2;
        let n = bars.len();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24).into_font().style(FontStyle::Bold))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((0..n.max(2) - 1).into_segmented(), 0.0..ymax)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_label)
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", 16))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if *i < n => bars[*i].0.clone(),
                _ => String::new(),
            })
            .draw()?;
        for (i, (_, v, c)) in bars.iter().enumerate() {
            let mut r = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), *v),
                ],
                c.filled(),
            );
            r.set_margin(0, 0, 25, 25);
            chart.draw_series(std::iter::once(r))?;
            chart.draw_series(std::iter::once(Text::new(
                fmt(*v),
                (SegmentValue::CenterOf(i), *v + ymax * 0.03),
                TextStyle::from(("sans-serif", 18).into_font().style(FontStyle::Bold)).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Bottom,
                    ),
                ),
            )))?;
        }
        root.present()?;
        Ok(())
    }

    /// Lines with points, one series per entry, legend at the upper right.
    pub fn lines(
        path: &std::path::Path,
        title: &str,
        x_label: &str,
        y_label: &str,
        series: &[Series],
        diagonal: bool,
    ) -> R {
        let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
        root.fill(&WHITE)?;
        let pts = series.iter().flat_map(|s| s.1.iter());
        let xmax = pts.clone().map(|p| p.0).fold(0.0, f64::max).max(1e-9) * 1.05;
        let ymax = pts.map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.15;
        let (xmax, ymax) = if diagonal {
            let m = xmax.max(ymax);
            (m, m)
        } else {
            (xmax, ymax)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24).into_font().style(FontStyle::Bold))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..xmax, 0.0..ymax)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", 16))
            .draw()?;
        if diagonal {
            chart
                .draw_series(LineSeries::new(
                    vec![(0.0, 0.0), (xmax, xmax)],
                    BLACK.mix(0.4).stroke_width(1),
                ))?
                .label("admitted = configured")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
        }
        for (name, data, c) in series {
            let c = *c;
            chart
                .draw_series(LineSeries::new(data.clone(), c.stroke_width(3)))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                });
            chart.draw_series(data.iter().map(|p| Circle::new(*p, 5, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    }
}

pub(super) fn draw(result: &Value) -> Result<Vec<String>> {
    plot::init();
    let dir = crate::bench::out_dir();
    let mut written = Vec::new();
    let mut done = |name: &str, r: Result<(), Box<dyn std::error::Error>>| -> Result<()> {
        r.map_err(|e| anyhow::anyhow!("chart {name}: {e}"))?;
        let p = dir.join(name);
        written.push(p.display().to_string());
        Ok(())
    };
    let g = &result["generator"];
    done(
        "flood_generator.png",
        plot::bars(
            &dir.join("flood_generator.png"),
            &format!(
                "Packet generator, one core: {:.1}x trafgen",
                g["ratio"].as_f64().unwrap_or(0.0)
            ),
            "Mpps received",
            &[
                (
                    "trafgen (netsniff-ng)".into(),
                    g["trafgen_rx_pps"].as_f64().unwrap_or(0.0) / 1e6,
                    plot::color(1),
                ),
                (
                    "waf gen (XDP live frames)".into(),
                    g["waf_gen_rx_pps"].as_f64().unwrap_or(0.0) / 1e6,
                    plot::color(2),
                ),
            ],
            &|v| format!("{v:.2} Mpps"),
        ),
    )?;
    let drop = result["drop_capacity"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (fam, suffix) in [("ipv4", ""), ("ipv6", "_v6")] {
        let by = |f: &dyn Fn(&Value) -> f64| -> Vec<(String, f64, plotters::style::RGBColor)> {
            DROP_FILTERS
                .iter()
                .enumerate()
                .filter_map(|(i, flt)| {
                    drop.iter()
                        .find(|r| r["filter"] == flt.key() && r["family"] == fam)
                        .map(|r| (flt.short(), f(r), plot::color(i)))
                })
                .collect()
        };
        let name = format!("flood_drop_rate{suffix}.png");
        done(
            &name,
            plot::bars(
                &dir.join(&name),
                &format!("{fam} flood: packets one receiving core drops, higher is better"),
                "Mpps (1 / CPU per packet)",
                &by(&|r| r["capacity_pps"].as_f64().unwrap_or(0.0) / 1e6),
                &|v| format!("{v:.1}"),
            ),
        )?;
        let name = format!("flood_drop_cpu{suffix}.png");
        done(
            &name,
            plot::bars(
                &dir.join(&name),
                &format!("{fam} flood: receiver CPU per packet, lower is better"),
                "CPU ns per packet",
                &by(&|r| r["cpu_ns_per_pkt"].as_f64().unwrap_or(0.0)),
                &|v| format!("{v:.0}"),
            ),
        )?;
    }
    let surv = result["survival"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let series: Vec<_> = SURVIVAL_FILTERS
        .iter()
        .map(|f| {
            let pts: Vec<(f64, f64)> = surv
                .iter()
                .filter(|r| r["filter"] == f.key())
                .map(|r| {
                    (
                        r["offered_pps"].as_f64().unwrap_or(0.0) / 1e6,
                        r["http_rps"].as_f64().unwrap_or(0.0) / 1e3,
                    )
                })
                .collect();
            let i = DROP_FILTERS.iter().position(|d| d == f).unwrap_or(0);
            (f.name().to_string(), pts, plot::color(i))
        })
        .collect();
    done(
        "flood_survival.png",
        plot::lines(
            &dir.join("flood_survival.png"),
            &format!(
                "HTTP requests served of a fixed {:.0}k/s while flooded",
                result["survival"]["http_rate"].as_f64().unwrap_or(0.0) / 1e3
            ),
            "spoofed flood offered (Mpps)",
            "HTTP requests/s served (thousands)",
            &series,
            false,
        ),
    )?;
    let rl = result["rate_limit"].as_array().cloned().unwrap_or_default();
    let pts: Vec<(f64, f64)> = rl
        .iter()
        .map(|r| {
            (
                r["configured_pps"].as_f64().unwrap_or(0.0) / 1e3,
                r["admitted_per_source_pps"].as_f64().unwrap_or(0.0) / 1e3,
            )
        })
        .collect();
    done(
        "flood_rate_limit.png",
        plot::lines(
            &dir.join("flood_rate_limit.png"),
            "Per-source rate limit under flood",
            "configured (kpps per source)",
            "admitted (kpps per source)",
            &[("waf XDP".to_string(), pts, plot::color(5))],
            true,
        ),
    )?;
    let stats = result["bpf_stats"].as_array().cloned().unwrap_or_default();
    let bars: Vec<_> = stats
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = r["program"].as_str().unwrap_or("?");
            let label = match name.split(':').nth(1).map(str::trim) {
                Some(p) if p.starts_with("banned") => "waf_xdp: ban drop",
                Some(p) if p.starts_with("clean") => "waf_xdp: pass",
                Some(p) if p.starts_with("rate") => "waf_xdp: rate drop",
                _ => "waf_gen: rewrite+TX",
            }
            .to_string();
            (
                label,
                r["ns_per_run"].as_f64().unwrap_or(0.0),
                plot::color(if i == stats.len() - 1 { 4 } else { 5 }),
            )
        })
        .collect();
    done(
        "flood_bpf_cost.png",
        plot::bars(
            &dir.join("flood_bpf_cost.png"),
            "Per-packet cost under traffic (kernel bpf_stats, incl. its clock reads)",
            "ns per packet",
            &bars,
            &|v| format!("{v:.0} ns"),
        ),
    )?;
    Ok(written)
}
