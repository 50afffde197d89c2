//! The error of an export: a file that cannot be read or holds no
//! state_dict, a state_dict no family fits (with the closest family and its
//! key differences, as `load_state_dict(strict=True)` lists them), a bad
//! option, or a graph the ONNX side refuses.

use netport_onnx::OnnxError;
use netport_onnx::build::BuildError;

/// Why a state_dict does not fit one family's model: what
/// `load_state_dict(strict=True)` would say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mismatch {
    /// The family (`resnet`).
    pub family: String,
    /// The variant tried (`resnet18`).
    pub variant: String,
    /// Keys the model has and the file lacks.
    pub missing: Vec<String>,
    /// Keys the file has and the model lacks.
    pub unexpected: Vec<String>,
    /// `(key, file shape, model shape)` for keys in both whose shapes differ.
    pub size_mismatch: Vec<(String, Vec<u64>, Vec<u64>)>,
}

impl Mismatch {
    /// How many problems (the family with the fewest is the closest).
    pub fn problems(&self) -> usize {
        self.missing.len() + self.unexpected.len() + self.size_mismatch.len()
    }

    /// The text of torch's `load_state_dict` error, lists cut at `limit`
    /// keys each.
    pub fn describe(&self, limit: usize) -> String {
        fn list(keys: &[String], limit: usize) -> String {
            let mut shown: Vec<String> = keys
                .iter()
                .take(limit)
                .map(|k| format!("\"{k}\""))
                .collect();
            if keys.len() > limit {
                shown.push(format!("... ({} more)", keys.len() - limit));
            }
            shown.join(", ")
        }
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "Missing key(s) in state_dict: {}.",
                list(&self.missing, limit)
            ));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!(
                "Unexpected key(s) in state_dict: {}.",
                list(&self.unexpected, limit)
            ));
        }
        for (k, file, model) in self.size_mismatch.iter().take(limit) {
            parts.push(format!(
                "size mismatch for {k}: copying a param with shape {file:?} from checkpoint, the shape in current model is {model:?}."
            ));
        }
        if self.size_mismatch.len() > limit {
            parts.push(format!(
                "... ({} more size mismatches)",
                self.size_mismatch.len() - limit
            ));
        }
        parts.join(" ")
    }
}

/// An export that cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file cannot be read as a checkpoint or safetensors file.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// What the reader said.
        reason: String,
    },
    /// The file was read but holds no state_dict.
    #[error("{path}: not a state_dict: {reason}")]
    NotAStateDict {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// No family fits the state_dict; the closest one and its differences.
    #[error(
        "the state_dict fits no known architecture; closest: {} ({}), {} problem(s): {}",
        closest.family, closest.variant, closest.problems(), closest.describe(8)
    )]
    NotRecognised {
        /// The closest family's differences.
        closest: Box<Mismatch>,
    },
    /// The state_dict does not fit the family or variant that was asked for.
    #[error(
        "the state_dict does not fit {} ({}): {}",
        mismatch.family, mismatch.variant, mismatch.describe(8)
    )]
    DoesNotFit {
        /// The differences.
        mismatch: Box<Mismatch>,
    },
    /// An architecture name no family knows.
    #[error("unknown architecture '{name}'; known: {known}")]
    UnknownArch {
        /// The name given.
        name: String,
        /// The families and variants known.
        known: String,
    },
    /// An option value that cannot be used.
    #[error("{0}")]
    Option(String),
    /// A tensor whose values cannot be used.
    #[error("tensor '{name}': {reason}")]
    BadTensor {
        /// The state_dict key.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The ONNX builder refused a node (a bug of the family's graph).
    #[error("building the graph: {0}")]
    Build(#[from] BuildError),
    /// The built model breaks a checker rule (a bug of the family's graph).
    #[error("the built model is not valid: {0}")]
    Invalid(String),
    /// Writing the model.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// A state the exporter should never reach.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ExportError {
    /// True for a file that was read but fits no architecture (or not the
    /// one asked for): a finding rather than a failure.
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            ExportError::NotRecognised { .. } | ExportError::DoesNotFit { .. }
        )
    }
}
