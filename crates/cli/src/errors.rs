//! Library errors as the CLI shows them: prefixed with the file they are
//! about, unless the error (an I/O error) names it already.

use netport_torch::TorchError;

/// Turns a torch error about the file shown as `shown` into a CLI error.
pub fn at(shown: &str) -> impl Fn(TorchError) -> anyhow::Error + '_ {
    move |e| match e {
        TorchError::Io { .. } => anyhow::anyhow!("{e}"),
        e => anyhow::anyhow!("{shown}: {e}"),
    }
}

/// True when `fix` refused because the file cannot be made to load with
/// weights_only: a finding (exit code 1), not a failure.
pub fn cannot_be_made_safe(e: &TorchError) -> bool {
    matches!(e, TorchError::Refused(reason) if reason.contains("cannot be made to load"))
}
