//! Library errors as the CLI shows them: prefixed with the file they are
//! about, unless the error (an I/O error) names it already, and with the
//! flag that helps (library messages name no flags).

use netport_torch::TorchError;
use netport_torch_safetensors::ConvertError;

/// Turns a torch, safetensors or conversion error about the file shown as
/// `shown` into a CLI error.
pub fn at<E: Into<ConvertError>>(shown: &str) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| {
        let e = e.into();
        let hint = match &e {
            ConvertError::Torch(TorchError::TensorsRefused { .. }) => {
                "; leave them out with --exclude"
            }
            _ => "",
        };
        if e.names_file() {
            anyhow::anyhow!("{e}{hint}")
        } else {
            anyhow::anyhow!("{shown}: {e}{hint}")
        }
    }
}

/// True when `fix` refused because the file cannot be made to load with
/// weights_only: a finding (exit code 1), not a failure.
pub fn cannot_be_made_safe(e: &TorchError) -> bool {
    matches!(e, TorchError::Refused(reason) if reason.contains("cannot be made to load"))
}
