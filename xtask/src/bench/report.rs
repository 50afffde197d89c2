//! The report: the tables and ratios both parts share, statistics and
//! number formatting, the machine and versions lines, and rewriting the
//! figures sections of docs/performance.md.

use super::*;
use std::fmt::Write as _;

pub(super) struct Report<'a> {
    pub(super) specs: &'a [Spec],
    pub(super) samples: &'a [Vec<Sample>],
}

impl Report<'_> {
    pub(super) fn index(&self, kind: Kind, file: Option<&str>) -> Option<usize> {
        self.specs
            .iter()
            .position(|s| s.kind == kind && s.file == file)
    }

    /// The table of one part's commands; `call` heads the column of the
    /// seconds the Python commands report.
    pub(super) fn table(&self, out: &mut String, part: Part, call: &str) -> Result<()> {
        // The rewrite table also has the sampled peak of private memory.
        let private = matches!(part, Part::Rewrite | Part::Caffe2 | Part::Export);
        writeln!(
            out,
            "| command | wall median | wall min – max | cpu median (min – max) | {call} median \
             (min – max) | peak RSS median | peak RSS min – max |{}",
            if private { " private peak max |" } else { "" }
        )?;
        writeln!(
            out,
            "|---|--:|--:|--:|--:|--:|--:|{}",
            if private { "--:|" } else { "" }
        )?;
        for (spec, runs) in self.specs.iter().zip(self.samples) {
            if spec.kind.part() != part {
                continue;
            }
            let wall = Stats::of(runs.iter().map(|s| s.wall.as_secs_f64()));
            let cpu = Stats::of(runs.iter().map(|s| s.cpu.as_secs_f64()));
            let peak = Stats::of(runs.iter().map(|s| s.peak_kib as f64));
            let call = if spec.reports_call() {
                let c = Stats::of(runs.iter().filter_map(|s| s.call).map(|d| d.as_secs_f64()));
                format!("{} ({} – {})", secs(c.median), secs(c.min), secs(c.max))
            } else {
                "–".into()
            };
            let private_peak = runs.iter().filter_map(|s| s.private_kib).max();
            let private_cell = match (private, private_peak) {
                (false, _) => String::new(),
                (true, Some(k)) => format!(" {} |", kib(k)),
                (true, None) => " – |".into(),
            };
            writeln!(
                out,
                "| `{}` | {} | {} – {} | {} ({} – {}) | {call} | {} | {} – {} |{private_cell}",
                spec.label(),
                secs(wall.median),
                secs(wall.min),
                secs(wall.max),
                secs(cpu.median),
                secs(cpu.min),
                secs(cpu.max),
                kib(peak.median as u64),
                kib(peak.min as u64),
                kib(peak.max as u64),
            )?;
        }
        Ok(())
    }

    /// Median and range of `f(a_run, b_run)` over the rounds.
    pub(super) fn paired(
        &self,
        a: Option<usize>,
        b: Option<usize>,
        f: impl Fn(&Sample, &Sample) -> f64,
    ) -> Option<Stats> {
        let (a, b) = (a?, b?);
        Some(Stats::of(
            self.samples[a]
                .iter()
                .zip(&self.samples[b])
                .map(|(x, y)| f(x, y)),
        ))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Stats {
    pub(super) min: f64,
    pub(super) median: f64,
    pub(super) max: f64,
}

impl Stats {
    /// Min, median (the mean of the middle two for an even count) and max;
    /// all NaN for no values.
    pub(super) fn of(values: impl Iterator<Item = f64>) -> Stats {
        let mut v: Vec<f64> = values.collect();
        if v.is_empty() {
            return Stats {
                min: f64::NAN,
                median: f64::NAN,
                max: f64::NAN,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stats {
            min: v[0],
            median,
            max: v[n - 1],
        }
    }
}

/// A target on the median of a paired ratio.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    /// The median must be at most this.
    AtMost(f64),
    /// The median must be at least this.
    AtLeast(f64),
}

/// A paired ratio with its target: `**1.2×** (1.1× – 1.4×) (target ≤ 2×:
/// met)`; a missing ratio is "n/a" and not met.
pub(super) fn against(s: Option<Stats>, target: Target) -> String {
    let (sign, value, met) = match target {
        Target::AtMost(t) => ("≤", t, s.is_some_and(|s| s.median <= t)),
        Target::AtLeast(t) => ("≥", t, s.is_some_and(|s| s.median >= t)),
    };
    format!("{} (target {sign} {value}×: {})", times(s), verdict(met))
}

/// The first lines of a part whose inputs the warm-up round wrote or read:
/// the cache state and the heading of the file list that follows.
pub(super) fn warm_files(out: &mut String) -> std::fmt::Result {
    use std::fmt::Write as _;
    writeln!(
        out,
        "- cache: warm (every file was just written or read by the warm-up round)."
    )?;
    writeln!(out, "- files:")
}

pub(super) fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

pub(super) fn times(s: Option<Stats>) -> String {
    match s {
        Some(s) => format!(
            "**{}×** ({}× – {}×)",
            ratio(s.median),
            ratio(s.min),
            ratio(s.max)
        ),
        None => "n/a".into(),
    }
}

pub(super) fn factor(s: Stats) -> String {
    format!("**{:.2}** ({:.2} – {:.2})", s.median, s.min, s.max)
}

pub(super) fn ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

pub(super) fn seconds(d: Duration) -> String {
    secs(d.as_secs_f64())
}

pub(super) fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.01 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

pub(super) fn kib(k: u64) -> String {
    let mib = k as f64 / 1024.0;
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

pub(super) fn bytes(b: u64) -> String {
    let mib = b as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB ({b} bytes)", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB ({b} bytes)")
    }
}

/// The size of a bench file, for the files list.
pub(super) fn on_disk(dir: &Path, name: &str) -> Result<String> {
    let size = fs::metadata(dir.join(name))
        .with_context(|| format!("reading the size of {name}"))?
        .len();
    Ok(format!("{} on disk", bytes(size)))
}

/// `text` with the part between the section's markers replaced by `figures`.
pub(super) fn replace_section(text: &str, section: &Section, figures: &str) -> Result<String> {
    let Section { begin: b, end: e } = section;
    let (Some(begin), Some(end)) = (text.find(b), text.find(e)) else {
        bail!("{DOCS} has lost its figures markers `{b}` and `{e}`");
    };
    if end < begin {
        bail!("{DOCS}: the figures end marker `{e}` comes before its begin marker");
    }
    let head = &text[..begin + b.len()];
    let tail = &text[end..];
    Ok(format!("{head}\n\n{}\n\n{tail}", figures.trim()))
}

// --- machine and versions --------------------------------------------------------

pub(super) fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let ram = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|k| format!("{:.1} GiB", k as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "? GiB".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    format!("{model}, {cores} processors (nproc), {ram} RAM, {kernel}")
}

/// The 1-minute load average (`/proc/loadavg`), if readable.
pub(super) fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The load line of a report: the 1-minute load average before and after
/// the measured runs, against the processor count.
pub(super) fn load_line(before: Option<f64>, after: Option<f64>) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let show = |l: Option<f64>| l.map_or_else(|| "?".to_string(), |l| format!("{l:.2}"));
    let busy = before
        .into_iter()
        .chain(after)
        .any(|l| l > cores as f64 * 0.5);
    format!(
        "1-minute load average {} before the runs and {} after, on {cores} processors{}",
        show(before),
        show(after),
        if busy {
            ": other work ran on the machine meanwhile, so read the spreads, not only the medians"
        } else {
            ""
        }
    )
}

pub(super) fn versions(root: &Path, ctx: &Ctx) -> Result<String> {
    let mut parts = Vec::new();
    if let Some(bin) = &ctx.netport {
        let version = util::output(Command::new(bin).arg("--version"), "netport --version")?;
        let commit = Command::new("git")
            .current_dir(root)
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let dirty = Command::new("git")
            .current_dir(root)
            .args([
                "status",
                "--porcelain",
                "--untracked-files=normal",
                "crates",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .is_some_and(|o| !o.stdout.is_empty());
        parts.push(match commit {
            Some(c) => format!(
                "{version} (release build, commit {c}{})",
                if dirty {
                    " + uncommitted changes in crates/"
                } else {
                    ""
                }
            ),
            None => format!("{version} (release build)"),
        });
    }
    if let Ok(out) = Command::new("rustc").arg("-V").output()
        && out.status.success()
    {
        parts.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    parts.push(util::output(
        util::python_env(&mut Command::new(&ctx.python)).args(["-c", VERSIONS_CODE]),
        "asking the venv for its Python and torch versions",
    )?);
    Ok(parts.join(", "))
}

/// Today's date in UTC, `YYYY-MM-DD`, from the system clock.
pub(super) fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days`.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    pub(super) fn median_of_odd_and_even_counts() {
        let s = Stats::of([3.0, 1.0, 2.0].into_iter());
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = Stats::of([4.0, 1.0, 3.0, 2.0].into_iter());
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 4.0));
        assert!(Stats::of(std::iter::empty()).median.is_nan());
    }

    #[test]
    pub(super) fn ratios_carry_their_target_and_verdict() {
        let s = Stats::of([1.1, 1.4, 1.2].into_iter());
        let line = against(Some(s), Target::AtMost(1.3));
        assert!(line.starts_with(&times(Some(s))), "{line}");
        assert!(line.ends_with(" (target ≤ 1.3×: met)"), "{line}");
        assert!(against(Some(s), Target::AtLeast(10.0)).ends_with(" (target ≥ 10×: NOT met)"));
        assert!(against(None, Target::AtMost(2.0)).ends_with("(target ≤ 2×: NOT met)"));
    }

    #[test]
    pub(super) fn dates_from_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_453), (2025, 12, 31));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    pub(super) fn figures_section_is_replaced_between_markers() {
        let (b, e) = (INSPECT_SECTION.begin, INSPECT_SECTION.end);
        let (rb, re) = (REWRITE_SECTION.begin, REWRITE_SECTION.end);
        let doc = format!("# P\n\nintro\n\n{b}\n\nold\n\n{e}\n\n{rb}\n\nold 2\n\n{re}\n");
        let new = replace_section(&doc, &INSPECT_SECTION, "new table\n").unwrap();
        assert_eq!(
            new,
            format!("# P\n\nintro\n\n{b}\n\nnew table\n\n{e}\n\n{rb}\n\nold 2\n\n{re}\n")
        );
        assert_eq!(
            replace_section(&new, &INSPECT_SECTION, "new table").unwrap(),
            new
        );
        let both = replace_section(&new, &REWRITE_SECTION, "new 2").unwrap();
        assert_eq!(
            both,
            format!("# P\n\nintro\n\n{b}\n\nnew table\n\n{e}\n\n{rb}\n\nnew 2\n\n{re}\n")
        );
        assert!(replace_section("no markers", &INSPECT_SECTION, "x").is_err());
        assert!(replace_section(&format!("{b}\n{e}\n"), &REWRITE_SECTION, "x").is_err());
    }
}
