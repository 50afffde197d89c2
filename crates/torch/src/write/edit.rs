//! Key and dtype edits applied while a checkpoint is rewritten (to
//! safetensors today, to a plain checkpoint later), and by `diff` to line two
//! files up.
//!
//! The steps, in this order, for every tensor name:
//!
//! 1. **`key`** (`--key model`): keep only names under `model.` and strip
//!    that prefix (a training checkpoint's sub-dict). A tensor *at* the key
//!    itself is not a sub-dict entry and is dropped.
//! 2. **`strip_prefixes`** (`--strip-prefix module.`): remove any of the
//!    prefixes, repeatedly, so `module._orig_mod.fc.weight` with both
//!    prefixes gives `fc.weight`. Names without the prefix are kept as they are.
//! 3. **`filter`** / **`exclude`** (regular expressions, `regex` crate syntax,
//!    unanchored: use `^`/`$`): matched against the name after steps 1-2; a
//!    name must match `filter` (when given) and must not match `exclude`.
//! 4. **`renames`** (`REGEX=REPL`, `$1`/`${name}` groups): each applied in
//!    turn to the whole name (`Regex::replace_all`).
//! 5. **`dtype`**: floating tensors of float64, float32, float16 and
//!    bfloat16 are converted to it (round to nearest even); integer, bool,
//!    complex and float8 tensors are kept as they are.
//!
//! Two source tensors that end up with the same name are an error naming both.

use std::collections::HashMap;

use netport_tensor::DType;
use regex::Regex;

use crate::error::TorchError;
use crate::objects::{Tensor, TensorKind};

/// The edits to apply; `Edits::default()` changes nothing.
#[derive(Debug, Clone, Default)]
pub struct Edits {
    /// Sub-dict to extract (`model`, `state_dict`): names under `<key>.`,
    /// with that prefix removed.
    pub key: Option<String>,
    /// Prefixes to strip (`module.`, `_orig_mod.`), repeatedly.
    pub strip_prefixes: Vec<String>,
    /// Keep only names matching this.
    pub filter: Option<Regex>,
    /// Drop names matching this.
    pub exclude: Option<Regex>,
    /// `(pattern, replacement)` pairs applied in order.
    pub renames: Vec<(Regex, String)>,
    /// Target dtype for floating tensors (float64/32/16, bfloat16).
    pub dtype: Option<DType>,
}

/// What [`Edits::plan`] decided for one source tensor that is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Index of the tensor in the list given to [`Edits::plan`].
    pub index: usize,
    /// The source name.
    pub source_name: String,
    /// The new name.
    pub name: String,
    /// The source dtype.
    pub source_dtype: DType,
    /// The dtype to write.
    pub dtype: DType,
}

impl Edits {
    /// Compiles a regular expression for `filter`/`exclude`.
    pub fn regex(pattern: &str) -> Result<Regex, TorchError> {
        Regex::new(pattern).map_err(|e| {
            // The regex crate's message spans lines; errors are one line.
            let one: Vec<String> = e.to_string().lines().map(|l| l.trim().to_owned()).collect();
            refuse(format!(
                "bad regular expression '{pattern}': {}",
                one.join(" ")
            ))
        })
    }

    /// Parses `REGEX=REPL` (split at the first `=` that is not preceded by a
    /// backslash; write `\=` for a literal `=` in the pattern).
    pub fn parse_rename(spec: &str) -> Result<(Regex, String), TorchError> {
        let bytes = spec.as_bytes();
        let split =
            (0..bytes.len()).find(|&i| bytes[i] == b'=' && (i == 0 || bytes[i - 1] != b'\\'));
        let Some(i) = split else {
            return Err(refuse(format!("'{spec}' is not REGEX=REPLACEMENT")));
        };
        let pattern = spec[..i].replace("\\=", "=");
        Ok((Self::regex(&pattern)?, spec[i + 1..].to_owned()))
    }

    /// Parses a `--dtype` value: `bf16`/`bfloat16`, `f16`/`fp16`/`float16`/
    /// `half`, `f32`/`fp32`/`float32`/`float`, `f64`/`float64`/`double`.
    pub fn parse_dtype(name: &str) -> Result<DType, TorchError> {
        match name.to_ascii_lowercase().as_str() {
            "bf16" | "bfloat16" => Ok(DType::BFloat16),
            "f16" | "fp16" | "float16" | "half" => Ok(DType::Float16),
            "f32" | "fp32" | "float32" | "float" => Ok(DType::Float32),
            "f64" | "fp64" | "float64" | "double" => Ok(DType::Float64),
            _ => Err(refuse(format!(
                "unknown dtype '{name}' (expected bf16, f16, f32 or f64)"
            ))),
        }
    }

    /// True when no edit is set.
    pub fn is_empty(&self) -> bool {
        self.key.is_none()
            && self.strip_prefixes.is_empty()
            && self.filter.is_none()
            && self.exclude.is_none()
            && self.renames.is_empty()
            && self.dtype.is_none()
    }

    /// The new name of a tensor, or `None` if it is left out (steps 1-4).
    pub fn rename(&self, name: &str) -> Option<String> {
        let mut n = name;
        if let Some(key) = &self.key {
            n = n.strip_prefix(key.as_str())?.strip_prefix('.')?;
        }
        'strip: loop {
            for p in &self.strip_prefixes {
                if !p.is_empty()
                    && let Some(rest) = n.strip_prefix(p.as_str())
                {
                    n = rest;
                    continue 'strip;
                }
            }
            break;
        }
        if self.filter.as_ref().is_some_and(|f| !f.is_match(n)) {
            return None;
        }
        if self.exclude.as_ref().is_some_and(|e| e.is_match(n)) {
            return None;
        }
        let mut out = n.to_owned();
        for (re, repl) in &self.renames {
            out = re.replace_all(&out, repl.as_str()).into_owned();
        }
        Some(out)
    }

    /// The dtype a tensor of `dtype` is written as (step 5).
    pub fn target_dtype(&self, dtype: DType) -> DType {
        match self.dtype {
            Some(to)
                if matches!(
                    dtype,
                    DType::Float64 | DType::Float32 | DType::Float16 | DType::BFloat16
                ) =>
            {
                to
            }
            _ => dtype,
        }
    }

    /// Applies the edits to `(name, dtype)` pairs in order; returns the kept
    /// ones. Errors when two tensors get the same new name, or when `key` is
    /// set and no name is under it.
    pub fn plan<'a>(
        &self,
        tensors: impl IntoIterator<Item = (&'a str, DType)>,
    ) -> Result<Vec<Planned>, TorchError> {
        let mut out: Vec<Planned> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut any_under_key = false;
        let mut top: Vec<String> = Vec::new();
        for (index, (name, dtype)) in tensors.into_iter().enumerate() {
            if let Some(key) = &self.key {
                let head = name.split('.').next().unwrap_or(name);
                if !top.iter().any(|t| t == head) {
                    top.push(head.to_owned());
                }
                if name.len() > key.len() + 1
                    && name.starts_with(key.as_str())
                    && name.as_bytes()[key.len()] == b'.'
                {
                    any_under_key = true;
                }
            }
            let Some(new) = self.rename(name) else {
                continue;
            };
            if new.is_empty() {
                return Err(refuse(format!(
                    "tensor '{name}' would be renamed to the empty name"
                )));
            }
            if let Some(&prev) = seen.get(&new) {
                return Err(refuse(format!(
                    "tensors '{}' and '{name}' would both be named '{new}'",
                    out[prev].source_name
                )));
            }
            seen.insert(new.clone(), out.len());
            out.push(Planned {
                index,
                source_name: name.to_owned(),
                name: new,
                source_dtype: dtype,
                dtype: self.target_dtype(dtype),
            });
        }
        if let Some(key) = &self.key
            && !any_under_key
        {
            return Err(refuse(format!(
                "no tensor is under key '{key}' (top-level keys with tensors: {})",
                if top.is_empty() {
                    "none".to_owned()
                } else {
                    top.join(", ")
                }
            )));
        }
        Ok(out)
    }
}

/// A conversion refused: the error every converter returns for it.
pub fn refuse(reason: impl Into<String>) -> TorchError {
    TorchError::Refused(reason.into())
}

/// Refuses a conversion when some tensors cannot be written to `target`
/// (`"safetensors"`, `"a state dict"`), naming up to 32 of them with why.
pub fn refuse_tensors(refused: Vec<String>, target: &str) -> Result<(), TorchError> {
    if refused.is_empty() {
        return Ok(());
    }
    Err(TorchError::TensorsRefused {
        target: target.to_owned(),
        tensors: refused,
    })
}

/// Refuses, all at once, the planned tensors of `all` that cannot be
/// written to `target`: those no writer can read (a meta tensor, an
/// unreadable rebuild, no storage), quantized ones (`quantized` says why the
/// target has none), and those `unwritable` names a reason for (what the
/// target cannot hold, such as a dtype).
pub fn check_writable(
    all: &[Tensor],
    planned: &[Planned],
    target: &str,
    quantized: &str,
    unwritable: impl Fn(&Tensor, &Planned) -> Option<String>,
) -> Result<(), TorchError> {
    let mut refused = Vec::new();
    for p in planned {
        let t = &all[p.index];
        let why = match &t.kind {
            TensorKind::Quantized(_) => Some(format!("quantized {} ({quantized})", t.dtype)),
            TensorKind::Meta => Some("a meta tensor (no data)".to_owned()),
            TensorKind::Unsupported { function } => {
                Some(format!("rebuilt by {function}, which cannot be read"))
            }
            _ => unwritable(t, p).or_else(|| t.storage.is_none().then(|| "no storage".to_owned())),
        };
        if let Some(why) = why {
            refused.push(format!("'{}': {why}", t.path));
        }
    }
    refuse_tensors(refused, target)
}

/// The paths of the tensors of `all` that `planned` leaves out.
pub fn left_out(all: &[Tensor], planned: &[Planned]) -> Vec<String> {
    let kept: std::collections::HashSet<usize> = planned.iter().map(|p| p.index).collect();
    all.iter()
        .enumerate()
        .filter(|(i, _)| !kept.contains(i))
        .map(|(_, t)| t.path.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_in_order() {
        let e = Edits {
            key: Some("model".into()),
            strip_prefixes: vec!["module.".into(), "_orig_mod.".into()],
            filter: None,
            exclude: Some(Edits::regex("num_batches").unwrap()),
            renames: vec![Edits::parse_rename(r"^fc\.(.*)=head.$1").unwrap()],
            dtype: Some(DType::BFloat16),
        };
        assert_eq!(
            e.rename("model.module._orig_mod.fc.weight").as_deref(),
            Some("head.weight")
        );
        assert_eq!(
            e.rename("model.conv.weight").as_deref(),
            Some("conv.weight")
        );
        assert_eq!(e.rename("model.bn.num_batches_tracked"), None);
        assert_eq!(e.rename("optimizer.state.0.step"), None);
        assert_eq!(e.rename("modelx.a"), None);
        assert_eq!(e.target_dtype(DType::Float32), DType::BFloat16);
        assert_eq!(e.target_dtype(DType::Int64), DType::Int64);
        assert_eq!(e.target_dtype(DType::Float8E4M3Fn), DType::Float8E4M3Fn);
    }

    #[test]
    fn collisions_and_missing_key() {
        let e = Edits {
            strip_prefixes: vec!["module.".into()],
            ..Edits::default()
        };
        let err = e
            .plan([("module.a", DType::Float32), ("a", DType::Float32)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("'module.a' and 'a'"), "{err}");
        let e = Edits {
            key: Some("state_dict".into()),
            ..Edits::default()
        };
        let err = e
            .plan([("model.a", DType::Float32)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("top-level keys with tensors: model"), "{err}");
    }

    #[test]
    fn rename_spec() {
        let (re, repl) = Edits::parse_rename(r"a\=b=c=d").unwrap();
        assert_eq!(re.as_str(), "a=b");
        assert_eq!(repl, "c=d");
        assert!(Edits::parse_rename("nothing").is_err());
        assert!(Edits::parse_rename("(=x").is_err());
    }
}
