//! The two exposition formats a scrape may ask for, chosen by its `Accept` header:
//! OpenMetrics 1.0 (what prometheus-client writes) when the client names it, else the
//! Prometheus text format 0.0.4, which promtool and older scrapers read. The text format is
//! made from the OpenMetrics text: a counter's HELP and TYPE name its `_total` series, and the
//! `# UNIT` and `# EOF` lines go.

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text,
}

impl Format {
    /// The format a request's `Accept` header asks for (none or anything else: text).
    pub fn accepted(accept: Option<&str>) -> Self {
        let asks = |a: &str| {
            a.split(',').any(|kind| {
                let kind = kind.split(';').next().unwrap_or("").trim();
                kind.eq_ignore_ascii_case("application/openmetrics-text")
            })
        };
        if accept.is_some_and(asks) { Self::OpenMetrics } else { Self::Text }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// `openmetrics` (the encoder's output) in this format.
    pub fn write(self, openmetrics: String) -> String {
        match self {
            Self::OpenMetrics => openmetrics,
            Self::Text => to_text(&openmetrics),
        }
    }
}

/// OpenMetrics text as Prometheus text 0.0.4.
fn to_text(om: &str) -> String {
    let counters: Vec<&str> =
        om.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find(|p| line.starts_with(p));
        match meta.map(|p| (p, line[p.len()..].split_once(' ').unwrap_or((&line[p.len()..], "")))) {
            Some((p, (name, rest))) if counters.contains(&name) => {
                out.push_str(&format!("{p}{name}_total {rest}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OM: &str = "# HELP td_packets Packets seen.\n# TYPE td_packets counter\n\
                      td_packets_total{v=\"a\"} 3\n# HELP td_hosts Hosts.\n# TYPE td_hosts gauge\n\
                      # UNIT td_hosts hosts\ntd_hosts 1\n# EOF\n";

    #[test]
    fn the_text_format_names_each_counter_by_its_total_series() {
        let text = Format::Text.write(OM.to_string());
        assert_eq!(
            text,
            "# HELP td_packets_total Packets seen.\n# TYPE td_packets_total counter\n\
             td_packets_total{v=\"a\"} 3\n# HELP td_hosts Hosts.\n# TYPE td_hosts gauge\n\
             td_hosts 1\n"
        );
        assert_eq!(Format::OpenMetrics.write(OM.to_string()), OM);
    }

    #[test]
    fn openmetrics_only_when_the_client_names_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::accepted(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::accepted(Some("text/plain;version=0.0.4")), Format::Text);
        assert_eq!(Format::accepted(Some("*/*")), Format::Text);
        assert_eq!(Format::accepted(None), Format::Text);
    }
}
