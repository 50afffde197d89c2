//! The inspect part: `netport inspect --json` against `torch.load`; the
//! probe that netport reads the checkpoints, and the part's report.

use super::*;
use std::fmt::Write as _;

/// netport inspect of `many.pt` within this factor of the floor (reading
/// the zip directory and the pickle bytes).
const FLOOR_TARGET: f64 = 3.0;

/// Runs `netport inspect FILE --json` once on every file, so that a netport
/// that cannot read them fails here with its own message, not as a timing.
pub(super) fn probe_netport(bin: &Path, dir: &Path) -> Result<()> {
    for (name, _) in FILES {
        use std::io::Read;
        let path = dir.join(name);
        let mut child = Command::new(bin)
            .args(["inspect"])
            .arg(&path)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // The JSON of many.pt is tens of MiB: only its start is kept. Holding
        // it all would raise this process's peak RSS, which every child
        // spawned afterwards inherits as the floor of its ru_maxrss.
        let mut head = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let mut stdout = child.stdout.take().expect("stdout is piped");
        loop {
            let n = stdout
                .read(&mut chunk)
                .context("reading netport's output")?;
            if n == 0 {
                break;
            }
            if head.len() < 64 {
                head.extend_from_slice(&chunk[..n.min(64)]);
            }
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            pipe.read_to_string(&mut stderr)
                .context("reading netport's errors")?;
        }
        let status = child.wait().context("waiting for netport inspect")?;
        if !status.success() {
            bail!(
                "netport cannot inspect the bench checkpoints yet: `netport inspect {} --json` \
                 {status}: {}\n(`cargo xtask bench --python-only` times the Python side alone)",
                path.display(),
                stderr.trim()
            );
        }
        if !head.trim_ascii_start().starts_with(b"{") {
            bail!(
                "`netport inspect {} --json` succeeded but did not print a JSON object",
                path.display()
            );
        }
    }
    eprintln!("netport inspects all {} bench checkpoints", FILES.len());
    Ok(())
}

impl Report<'_> {
    /// The inspect part: files, table, ratios against torch.load.
    pub(super) fn inspect(&self, out: &mut String, dir: &Path) -> Result<()> {
        writeln!(
            out,
            "- cache: warm. Every file was just written or read by the warm-up round, so it is \
             in the page cache; nothing is dropped between runs (that needs root). A first read \
             from disk is slower for every command, most for those that read every tensor byte."
        )?;
        writeln!(out, "- files (written by torch.save, default zip format):")?;
        for (name, what) in FILES {
            writeln!(out, "  - `{name}`: {what}; {}", on_disk(dir, name)?)?;
        }
        writeln!(out)?;
        self.table(out, Part::Inspect, "torch.load call")?;
        writeln!(out)?;
        self.inspect_ratios(out)?;
        writeln!(out)?;
        writeln!(
            out,
            "Whole processes, wall time from spawn to reap; `cpu` is user + system time; `peak \
             RSS` is the process's largest resident set (`ru_maxrss` from `wait4`), file pages it \
             mapped and touched included. `torch.load call` is the call alone, timed inside the \
             Python process (`time.perf_counter()` around it): no interpreter start-up, no \
             `import torch`. Ratios are taken run by run within a round, then the median."
        )?;
        Ok(())
    }

    pub(super) fn inspect_ratios(&self, out: &mut String) -> Result<()> {
        writeln!(out, "Ratios (median over rounds, min – max in brackets):\n")?;
        let timed_netport = self.specs.iter().any(|s| s.kind == Kind::Netport);
        if !timed_netport {
            writeln!(
                out,
                "- netport was not timed (--python-only): no ratios against it"
            )?;
        }
        let files: &[(&str, f64)] = if timed_netport {
            &[(BIG, BIG_TARGET), (MANY, MANY_TARGET)]
        } else {
            &[]
        };
        for &(file, target) in files {
            let netport = self.index(Kind::Netport, Some(file));
            let load = self.index(Kind::Load, Some(file));
            let mmap = self.index(Kind::LoadMmap, Some(file));
            let ratio = |x: &Sample, y: &Sample| x.wall.as_secs_f64() / y.wall.as_secs_f64();
            let whole = self.paired(load, netport, |x, y| ratio(x, y));
            writeln!(
                out,
                "- `{file}`: torch.load(weights_only=True) / netport inspect: {}",
                against(whole, Target::AtLeast(target)),
            )?;
            let whole_mmap = self.paired(mmap, netport, |x, y| ratio(x, y));
            writeln!(
                out,
                "- `{file}`: torch.load(weights_only=True, mmap=True) / netport inspect: {}",
                times(whole_mmap)
            )?;
            // The cost of torch.load itself: the call as timed inside the
            // Python process, against netport's whole process.
            for (name, idx) in [("torch.load", load), ("torch.load(mmap=True)", mmap)] {
                let alone = self.paired(idx, netport, |x, y| {
                    x.call.unwrap_or_default().as_secs_f64() / y.wall.as_secs_f64()
                });
                writeln!(
                    out,
                    "- `{file}`: the {name} call alone (timed inside Python, no start-up or \
                     import) / netport inspect (whole process): {}",
                    times(alone)
                )?;
            }
        }
        // The floor: what any reader must do (the zip directory and the
        // pickle), against netport's whole inspect.
        for &(file, _) in files {
            let floor = self.index(Kind::Floor, Some(file));
            if floor.is_none() {
                continue;
            }
            let netport = self.index(Kind::Netport, Some(file));
            let over = self.paired(netport, floor, |x, y| {
                x.wall.as_secs_f64() / y.wall.as_secs_f64()
            });
            let ratio = if file == MANY {
                against(over, Target::AtMost(FLOOR_TARGET))
            } else {
                times(over)
            };
            writeln!(
                out,
                "- `{file}`: netport inspect / the floor (`unzip -l` + `unzip -p` of data.pkl): {ratio}",
            )?;
        }
        // Peak memory: big.pt has 8x the tensor bytes of mid.pt, the same
        // tensor count and names.
        let peak = |x: &Sample, y: &Sample| x.peak_kib as f64 / y.peak_kib.max(1) as f64;
        if let Some(flat) = self.paired(
            self.index(Kind::Netport, Some(BIG)),
            self.index(Kind::Netport, Some(MID)),
            |x, y| peak(x, y),
        ) {
            writeln!(
                out,
                "- peak RSS, netport inspect `{BIG}` / `{MID}` (8× the tensor bytes): {} \
                 (target: independent of tensor bytes, within {:.0}%: {})",
                factor(flat),
                (FLAT_TOLERANCE - 1.0) * 100.0,
                verdict(flat.median <= FLAT_TOLERANCE),
            )?;
        }
        // Memory per tensor: the growth of netport's peak from mid.pt (256
        // tensors) to many.pt (50,000), both through the same process set-up.
        if let Some(per) = self.paired(
            self.index(Kind::Netport, Some(MANY)),
            self.index(Kind::Netport, Some(MID)),
            |x, y| (x.peak_kib as f64 - y.peak_kib as f64) * 1024.0 / (MANY_TENSORS - MID_TENSORS),
        ) {
            writeln!(
                out,
                "- peak RSS per tensor, netport inspect `{MANY}` over `{MID}` ({} more tensors): \
                 **{:.0} B** ({:.0} – {:.0} B) (target ≤ {PER_TENSOR_TARGET:.0} B: {})",
                MANY_TENSORS - MID_TENSORS,
                per.median,
                per.min,
                per.max,
                verdict(per.median <= PER_TENSOR_TARGET),
            )?;
        }
        for (kind, name) in [
            (Kind::Load, "torch.load"),
            (Kind::LoadMmap, "torch.load(mmap=True)"),
        ] {
            let grows = self.paired(
                self.index(kind, Some(BIG)),
                self.index(kind, Some(MID)),
                |x, y| peak(x, y),
            );
            if let Some(grows) = grows {
                writeln!(
                    out,
                    "- peak RSS, {name} `{BIG}` / `{MID}`, for comparison: {}",
                    factor(grows)
                )?;
            }
        }
        Ok(())
    }
}
