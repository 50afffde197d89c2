//! The tensor-name flags shared by the commands that read tensors by name
//! (`convert`, `diff`), turned into `netport_torch::Edits`.

use netport_torch::Edits;

/// Which tensors, by name: flattened into the commands' `Args`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// Remove this prefix from tensor names (repeatable, applied repeatedly:
    /// `--strip-prefix module. --strip-prefix _orig_mod.`).
    #[arg(long = "strip-prefix", value_name = "PREFIX")]
    pub strip_prefix: Vec<String>,
    /// Keep only tensors whose name (after the steps above) matches.
    #[arg(long, value_name = "REGEX")]
    pub filter: Option<String>,
    /// Leave out tensors whose name (after the steps above) matches.
    #[arg(long, value_name = "REGEX")]
    pub exclude: Option<String>,
}

impl SelectArgs {
    /// The edits these flags ask for, plus a key, renames and a dtype.
    pub fn edits(
        &self,
        key: Option<&str>,
        rename: &[String],
        dtype: Option<&str>,
    ) -> anyhow::Result<Edits> {
        Ok(Edits {
            key: key.map(str::to_owned),
            strip_prefixes: self.strip_prefix.clone(),
            filter: self.filter.as_deref().map(Edits::regex).transpose()?,
            exclude: self.exclude.as_deref().map(Edits::regex).transpose()?,
            renames: rename
                .iter()
                .map(|r| Edits::parse_rename(r).map_err(|e| anyhow::anyhow!("--rename: {e}")))
                .collect::<Result<_, _>>()?,
            dtype: dtype.map(Edits::parse_dtype).transpose()?,
        })
    }
}
