//! The registry of architecture families, one module each, and the
//! recognition that picks one for a state_dict.
//!
//! A family reads the hyper-parameters it can see in the names and shapes
//! (depths, widths, groups, classes) and returns a [`Model`]; the model's
//! forward, run dry ([`Emit::dry`]), declares the state_dict that torchvision's
//! module would have, which is compared key by key and shape by shape with
//! the file (as `load_state_dict(strict=True)` does). The first family whose
//! model fits exactly is used; when none does, the error names the closest:
//! the one sharing the most keys with the file, then a variant torchvision
//! builds, then the one with the fewest differences.

use std::collections::{BTreeMap, BTreeSet};

use crate::emit::{Declared, Emit};
use crate::error::{ExportError, Mismatch};
use crate::source::StateDict;

pub mod alexnet;
pub mod blocks;
pub mod convnext;
pub mod densenet;
pub mod efficientnet;
pub mod inception;
pub mod maxvit;
pub mod mnasnet;
pub mod mobilenet_v2;
pub mod mobilenet_v3;
pub mod regnet;
pub mod resnet;
pub mod shufflenet;
pub mod squeezenet;
pub mod swin;
pub mod vgg;
pub mod vit;

/// A recognised model: a family's variant with its hyper-parameters.
pub trait Model {
    /// The family (`resnet`).
    fn family(&self) -> &'static str;
    /// The variant, as torchvision's builder is named (`resnet18`), or a
    /// description when no builder matches exactly.
    fn variant(&self) -> String;
    /// Classes of the head.
    fn classes(&self) -> u64;
    /// The input size (H, W) the family is trained at.
    fn default_input(&self) -> (u64, u64) {
        (224, 224)
    }
    /// True when the input size is part of the weights (ViT's position
    /// embedding): `--input-size` must then equal the default.
    fn fixed_input(&self) -> bool {
        false
    }
    /// The eval-mode forward from the input value `x`; returns the output
    /// value ([batch, classes]).
    fn forward(&self, e: &mut Emit<'_>, x: &str, input: (u64, u64)) -> Result<String, ExportError>;
}

/// Options a family reads that the weights do not show (`--set k=v`).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// From `k=v` pairs.
    pub fn new(pairs: &[(String, String)]) -> Self {
        Settings {
            values: pairs.iter().cloned().collect(),
        }
    }

    /// The keys given.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// A positive integer setting, `None` when absent.
    pub fn number(&self, key: &str) -> Result<Option<u64>, ExportError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(ExportError::Option(format!(
                    "--set {key}={v}: expected a positive integer"
                ))),
            },
        }
    }

    /// A boolean setting (`true`/`false`, `1`/`0`), `default` when absent.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ExportError> {
        match self.values.get(key).map(String::as_str) {
            None => Ok(default),
            Some("true" | "True" | "1") => Ok(true),
            Some("false" | "False" | "0") => Ok(false),
            Some(v) => Err(ExportError::Option(format!(
                "--set {key}={v}: expected true or false"
            ))),
        }
    }
}

/// A family's reader of hyper-parameters: the model for a state_dict,
/// hyper-parameters read from it or those of the named variant.
pub type Guess = fn(&StateDict, Option<&str>, &Settings) -> Result<Box<dyn Model>, ExportError>;

/// A family of architectures.
pub struct Family {
    /// Its name (`resnet`).
    pub name: &'static str,
    /// The torchvision builders it covers (`resnet18`, ...).
    pub variants: &'static [&'static str],
    /// The `--set` keys it reads.
    pub settings: &'static [&'static str],
    /// The model for a state_dict: hyper-parameters read from it, or those
    /// of the named variant (classes still read from the head).
    pub guess: Guess,
}

/// Every family, in the order recognition tries them.
pub const FAMILIES: &[Family] = &[
    resnet::FAMILY,
    vgg::FAMILY,
    alexnet::FAMILY,
    squeezenet::FAMILY,
    densenet::FAMILY,
    mobilenet_v2::FAMILY,
    mobilenet_v3::FAMILY,
    efficientnet::FAMILY,
    shufflenet::FAMILY,
    mnasnet::FAMILY,
    inception::GOOGLENET,
    inception::INCEPTION_V3,
    regnet::FAMILY,
    convnext::FAMILY,
    vit::FAMILY,
    swin::FAMILY,
    maxvit::FAMILY,
];

/// The state_dict keys and shapes `model` declares.
pub fn declared(model: &dyn Model, sd: &StateDict, opset: i64) -> Result<Declared, ExportError> {
    let mut e = Emit::dry(sd, opset);
    model.forward(&mut e, "input", model.default_input())?;
    Ok(e.declared())
}

/// What `load_state_dict(strict=True)` of `sd` into `model` would report.
pub fn compare(model: &dyn Model, declared: &Declared, sd: &StateDict) -> Mismatch {
    let names: BTreeSet<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
    let mut m = Mismatch {
        family: model.family().to_string(),
        variant: model.variant(),
        ..Mismatch::default()
    };
    for (name, shape) in declared {
        match sd.shape(name) {
            None => m.missing.push(name.clone()),
            Some(s) if s != shape.as_slice() => {
                m.size_mismatch
                    .push((name.clone(), s.to_vec(), shape.clone()))
            }
            Some(_) => {}
        }
    }
    m.unexpected = sd
        .entries()
        .keys()
        .filter(|k| !names.contains(k.as_str()))
        .cloned()
        .collect();
    m
}

/// Every family and variant name, for messages.
pub fn known_names() -> String {
    FAMILIES
        .iter()
        .map(|f| format!("{} ({})", f.name, f.variants.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The model for `sd`: the family (and variant) `arch` names, or the first
/// family that fits.
pub fn recognise(
    sd: &StateDict,
    arch: Option<&str>,
    settings: &Settings,
    opset: i64,
) -> Result<Box<dyn Model>, ExportError> {
    let candidates: Vec<(&Family, Option<&str>)> = match arch {
        Some(name) => {
            let lower = name.to_ascii_lowercase();
            let found = FAMILIES.iter().find_map(|f| {
                if f.name == lower {
                    Some((f, None))
                } else {
                    f.variants
                        .iter()
                        .find(|v| **v == lower)
                        .map(|v| (f, Some(*v)))
                }
            });
            match found {
                Some(c) => vec![c],
                None => {
                    return Err(ExportError::UnknownArch {
                        name: name.to_string(),
                        known: known_names(),
                    });
                }
            }
        }
        None => FAMILIES.iter().map(|f| (f, None)).collect(),
    };
    for key in settings.keys() {
        if !candidates.iter().any(|(f, _)| f.settings.contains(&key)) {
            return Err(ExportError::Option(format!(
                "--set {key}: no candidate family reads it"
            )));
        }
    }
    // The closest: the most keys the file and the model share, then the
    // fewest problems.
    let mut closest: Option<((usize, bool, usize), Mismatch)> = None;
    for (family, variant) in &candidates {
        // The hyper-parameters read from the file first; when they do not
        // fit, each named variant too, so that the closest is one torchvision
        // builds (a truncated resnet18 is "resnet18 less layer4").
        let tries: Vec<Option<&str>> = match variant {
            Some(v) => vec![Some(*v)],
            None => std::iter::once(None)
                .chain(family.variants.iter().map(|v| Some(*v)))
                .collect(),
        };
        for attempt in tries {
            let model = (family.guess)(sd, attempt, settings)?;
            let declared = declared(model.as_ref(), sd, opset)?;
            let m = compare(model.as_ref(), &declared, sd);
            if m.problems() == 0 {
                return Ok(model);
            }
            // Most keys shared, then a variant torchvision builds, then the
            // fewest differences.
            let shared = declared.len() - m.missing.len();
            let named = family.variants.contains(&m.variant.as_str());
            let rank = (shared, named, usize::MAX - m.problems());
            if closest.as_ref().is_none_or(|(r, _)| rank > *r) {
                closest = Some((rank, m));
            }
        }
    }
    let closest = Box::new(closest.map(|c| c.1).unwrap_or_default());
    Err(if arch.is_some() {
        ExportError::DoesNotFit { mismatch: closest }
    } else {
        ExportError::NotRecognised { closest }
    })
}

/// Small readers of hyper-parameters from names and shapes.
pub(crate) mod read {
    use crate::source::StateDict;

    /// Dim `i` of `name`, if present.
    pub fn dim(sd: &StateDict, name: &str, i: usize) -> Option<u64> {
        sd.shape(name).and_then(|s| s.get(i).copied())
    }

    /// How many consecutive `prefix{i}` (i from `start`) have a key
    /// starting with `prefix{i}.`.
    pub fn count(sd: &StateDict, prefix: &str, start: usize) -> usize {
        let mut n = 0;
        while has_under(sd, &format!("{prefix}{}", start + n)) {
            n += 1;
        }
        n
    }

    /// True when some key sits under `path.`.
    pub fn has_under(sd: &StateDict, path: &str) -> bool {
        let p = format!("{path}.");
        sd.entries()
            .range(p.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&p))
    }
}
