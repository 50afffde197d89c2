//! The rewrite part: `netport map-location` and `netport convert` against
//! `cp` and the Python peers; the output folder, the probe that plans which
//! commands can run, and the part's report.

use super::*;
use std::fmt::Write as _;

/// The folder the rewrite commands write into; removed, with whatever is left
/// in it, when dropped (also when the run fails).
pub(super) struct OutDir(pub(super) PathBuf);

impl OutDir {
    pub(super) fn create(path: PathBuf) -> Result<OutDir> {
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(OutDir(path))
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.0)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("warning: could not remove {}: {err}", self.0.display());
        }
    }
}

/// Removes `path` (a file, or a folder with what is in it) if it is there.
pub(super) fn remove_output(path: &Path) -> Result<()> {
    let removed = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing {}", path.display())),
    }
}

/// What the rewrite part times, as found by running each netport command once.
pub(super) struct RewritePlan {
    /// The file `netport convert` and its Python peer read: big_cuda.pt, or
    /// big.pt when convert refuses the cuda-tagged file.
    pub(super) convert_input: &'static str,
    /// Why convert reads big.pt, when it does.
    pub(super) convert_note: Option<String>,
    /// netport commands that could not run, with the reason; not timed.
    pub(super) skipped: Vec<String>,
    pub(super) map_location: bool,
    pub(super) convert: bool,
}

/// Runs `netport map-location` and `netport convert` once each and checks
/// their output, so that a netport that cannot do the job fails here with its
/// own message, not as a timing. A command that fails is left out of the
/// timings (and `--write-docs` refuses); convert falls back to big.pt when it
/// refuses big_cuda.pt.
pub(super) fn probe_rewrite(ctx: &Ctx) -> Result<RewritePlan> {
    let mut plan = RewritePlan {
        convert_input: BIG_CUDA,
        convert_note: None,
        skipped: Vec::new(),
        map_location: false,
        convert: false,
    };
    let Some(bin) = &ctx.netport else {
        return Ok(plan);
    };
    let inspect = |path: &Path| -> Result<String> {
        let out = Command::new(bin)
            .arg("inspect")
            .arg(path)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("starting {}", bin.display()))?;
        if !out.status.success() {
            bail!(
                "`netport inspect {} --json` {}: {}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // The same string the fixture script checks for in data.pkl; in the
    // JSON, a device name.
    let input = ctx.dir.join(BIG_CUDA);
    if !inspect(&input)?.contains("\"cuda:0\"") {
        bail!(
            "netport inspect does not see device cuda:0 in {}",
            input.display()
        );
    }

    let map = Spec {
        kind: Kind::MapLocation,
        file: Some(BIG_CUDA),
    };
    match probe_once(ctx, &map) {
        Ok(out) => {
            let json = inspect(&out);
            remove_output(&out)?;
            let json = json?;
            if json.contains("\"cuda:0\"") || !json.contains("\"cpu\"") {
                bail!(
                    "`{}` succeeded, but netport inspect still sees cuda:0 (or no cpu) in its \
                     output",
                    map.label()
                );
            }
            plan.map_location = true;
        }
        Err(err) => plan
            .skipped
            .push(format!("`{}` failed: {err:#}", map.label())),
    }

    let mut convert = Spec {
        kind: Kind::Convert,
        file: Some(BIG_CUDA),
    };
    let mut result = probe_once(ctx, &convert);
    if let Err(err) = &result {
        let refusal = format!("{err:#}");
        convert.file = Some(BIG);
        result = probe_once(ctx, &convert);
        if result.is_ok() {
            eprintln!("netport convert refused {BIG_CUDA}; converting {BIG} instead: {refusal}");
            plan.convert_input = BIG;
            plan.convert_note = Some(format!(
                "`netport convert` refused the cuda-tagged `{BIG_CUDA}` ({}), so the convert \
                 rows (netport and its Python peer) read the cpu-tagged `{BIG}` instead: the \
                 same tensors and tensor bytes",
                refusal.lines().last().unwrap_or("").trim()
            ));
        }
    }
    match result {
        Ok(out) => {
            let check = check_safetensors(&out);
            remove_output(&out)?;
            check.with_context(|| format!("checking the output of `{}`", convert.label()))?;
            plan.convert = true;
        }
        Err(err) => plan
            .skipped
            .push(format!("`{}` failed: {err:#}", convert.label())),
    }
    for skipped in &plan.skipped {
        eprintln!("not timed: {skipped}");
    }
    if plan.skipped.is_empty() {
        eprintln!("netport map-location and convert work on the bench checkpoint");
    }
    Ok(plan)
}

/// Runs a rewrite command once (stdout to /dev/null); returns its output path.
pub(super) fn probe_once(ctx: &Ctx, spec: &Spec) -> Result<PathBuf> {
    let out = spec.output(ctx).expect("a rewrite command has an output");
    remove_output(&out)?;
    let result = spec
        .command(ctx)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("starting `{}`", spec.label()));
    let result = result.and_then(|o| {
        if !o.status.success() {
            bail!(
                "{}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        if !out.is_file() {
            bail!("it succeeded but wrote no {}", out.display());
        }
        Ok(())
    });
    if let Err(err) = result {
        remove_output(&out)?;
        return Err(err);
    }
    Ok(out)
}

/// A safetensors file holding the 256 tensors of big.pt: the header names
/// the last one, and the file holds at least the 2 GiB of tensor bytes.
pub(super) fn check_safetensors(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len);
    if len > 1 << 20 {
        bail!(
            "{}: a header of {len} bytes is not a safetensors header",
            path.display()
        );
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)?;
    let header = String::from_utf8_lossy(&header);
    let size = file.metadata()?.len();
    let tensor_bytes = 256 * 2048 * 1024 * 4;
    if !header.contains("\"layers.255.weight\"") || size < tensor_bytes {
        bail!(
            "{} ({size} bytes) does not look like big.pt's 256 tensors in safetensors",
            path.display()
        );
    }
    Ok(())
}

impl Report<'_> {
    /// The rewrite part: files, table, ratios against cp and the Python peers.
    pub(super) fn rewrite(&self, out: &mut String, dir: &Path, plan: &RewritePlan) -> Result<()> {
        writeln!(
            out,
            "- cache: warm. The input was just written or read by the warm-up round, so it is in \
             the page cache; nothing is dropped between runs (that needs root)."
        )?;
        writeln!(
            out,
            "- outputs: each command writes a new file on the input's file system (in \
             `<cache>/bench-<hash>/out-<pid>/`), deleted right after its run. `cp`, `torch.save` \
             and `save_file` return once the bytes are in the page cache, not on disk, and so do \
             netport's writers (a complete temporary file renamed into place, not fsynced): `cp` \
             is the like-for-like floor. `cp … && sync OUT` (coreutils `sync FILE` fsyncs that \
             one file) shows what forcing the bytes to disk costs."
        )?;
        writeln!(out, "- files (written by torch.save, default zip format):")?;
        writeln!(
            out,
            "  - `{BIG_CUDA}`: {BIG_CUDA_WHAT}; {}",
            on_disk(dir, BIG_CUDA)?
        )?;
        if plan.convert_input != BIG_CUDA {
            let (_, what) = FILES
                .iter()
                .find(|(name, _)| *name == plan.convert_input)
                .expect("the convert input is a bench file");
            writeln!(
                out,
                "  - `{}`: {what}; {}",
                plan.convert_input,
                on_disk(dir, plan.convert_input)?
            )?;
        }
        if let Some(note) = &plan.convert_note {
            writeln!(
                out,
                "- convert input: {note}. The `cp` rows copy `{BIG_CUDA}`."
            )?;
        }
        for skipped in &plan.skipped {
            writeln!(out, "- not timed: {skipped}")?;
        }
        writeln!(out)?;
        self.table(out, Part::Rewrite, "load + save call")?;
        writeln!(out)?;
        self.rewrite_ratios(out, plan)?;
        writeln!(out)?;
        writeln!(
            out,
            "Whole processes, wall time from spawn to reap; `cpu` is user + system time; `peak \
             RSS` is the process's largest resident set (`ru_maxrss` from `wait4`; for `cp && \
             sync`, the larger of the shell's and its children's), file pages it mapped and \
             touched included: those of a memory-mapped input are the page cache's, shared and \
             reclaimable, yet counted in full. `private peak` is the largest `RssAnon` (heap, \
             stacks, anonymous maps) seen in `/proc/PID/status`, read every {} ms while the \
             process runs (a shorter peak can be missed; not taken for the shell of `cp && \
             sync`). `load + save call` is `torch.load` and the save together, timed \
             inside the Python process (`time.perf_counter()` around them): no interpreter \
             start-up, no imports. Ratios are taken run by run within a round, then the median.",
            private::INTERVAL.as_millis()
        )?;
        Ok(())
    }

    pub(super) fn rewrite_ratios(&self, out: &mut String, plan: &RewritePlan) -> Result<()> {
        writeln!(out, "Ratios (median over rounds, min – max in brackets):\n")?;
        let wall = |x: &Sample, y: &Sample| x.wall.as_secs_f64() / y.wall.as_secs_f64();
        let cp = self.index(Kind::Cp, Some(BIG_CUDA));
        let cp_sync = self.index(Kind::CpSync, Some(BIG_CUDA));
        let rows = [
            (
                Kind::MapLocation,
                "netport map-location",
                BIG_CUDA,
                MAP_LOCATION_VS_CP,
                Kind::ResaveTorch,
                "torch.save(torch.load(map_location='cpu'))",
                Some(MAP_LOCATION_VS_PYTHON),
            ),
            (
                Kind::Convert,
                "netport convert",
                plan.convert_input,
                CONVERT_VS_CP,
                Kind::ResaveSafetensors,
                "save_file(torch.load(map_location='cpu'))",
                Some(CONVERT_VS_PYTHON),
            ),
        ];
        for (kind, name, input, cp_target, peer_kind, peer_name, peer_target) in rows {
            let netport = self.index(kind, Some(input));
            let peer = self.index(peer_kind, Some(input));
            let peer_cp = self.paired(peer, cp, wall);
            let Some(me) = netport else {
                writeln!(out, "- `{name}` was not timed: no ratios against it")?;
                writeln!(out, "- {peer_name} / cp: {}", times(peer_cp))?;
                continue;
            };
            let vs_cp = self.paired(netport, cp, wall);
            writeln!(
                out,
                "- `{input}`: {name} / cp: {}",
                against(vs_cp, Target::AtMost(cp_target)),
            )?;
            let vs_cp_sync = self.paired(netport, cp_sync, wall);
            writeln!(
                out,
                "- `{input}`: {name} / (cp && sync), for comparison (only the latter fsyncs): {}",
                times(vs_cp_sync),
            )?;
            let vs_peer = self.paired(peer, netport, wall);
            match peer_target {
                Some(target) => writeln!(
                    out,
                    "- `{input}`: {peer_name} / {name}: {}",
                    against(vs_peer, Target::AtLeast(target)),
                )?,
                None => writeln!(out, "- `{input}`: {peer_name} / {name}: {}", times(vs_peer))?,
            }
            let alone = self.paired(peer, netport, |x, y| {
                x.call.unwrap_or_default().as_secs_f64() / y.wall.as_secs_f64()
            });
            writeln!(
                out,
                "- `{input}`: the load + save alone (timed inside Python, no start-up or \
                 imports) / {name} (whole process): {}",
                times(alone)
            )?;
            writeln!(
                out,
                "- `{input}`: {peer_name} / cp, for comparison: {}",
                times(peer_cp)
            )?;
            let peak = Stats::of(self.samples[me].iter().map(|s| s.peak_kib as f64));
            writeln!(
                out,
                "- peak RSS (`ru_maxrss`, the input's mapped file pages included), {name}: \
                 **{}** (max {}) (target < {REWRITE_PEAK_MIB:.0} MiB: {})",
                kib(peak.median as u64),
                kib(peak.max as u64),
                verdict(peak.max < REWRITE_PEAK_MIB * 1024.0),
            )?;
            if let Some(private) = self.samples[me].iter().filter_map(|s| s.private_kib).max() {
                writeln!(
                    out,
                    "- private memory peak (`RssAnon`, sampled every {} ms; the file pages are \
                     not counted), {name}: **{}** (target < {REWRITE_PEAK_MIB:.0} MiB: {})",
                    private::INTERVAL.as_millis(),
                    kib(private),
                    verdict((private as f64) < REWRITE_PEAK_MIB * 1024.0),
                )?;
            }
        }
        Ok(())
    }
}
