//! OpenMetrics text to the classic Prometheus text format (0.0.4).
//!
//! The two differ, for what prometheus-client writes, in three ways: a counter's family is
//! named without `_total` in OpenMetrics and with it in the classic form (where the `# HELP`
//! and `# TYPE` names must be the sample's name), `# UNIT` lines do not exist in the classic
//! form, and neither does the closing `# EOF`.

use std::collections::HashSet;

/// The classic form of `openmetrics`.
pub(crate) fn classic(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(p);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_units_and_eof() {
        let om = "# HELP a_bytes bytes.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\n\
                  a_bytes_total 5\n# HELP g gauge.\n# TYPE g gauge\ng 2\n# EOF\n";
        assert_eq!(
            super::classic(om),
            "# HELP a_bytes_total bytes.\n# TYPE a_bytes_total counter\na_bytes_total 5\n\
             # HELP g gauge.\n# TYPE g gauge\ng 2\n"
        );
    }
}
