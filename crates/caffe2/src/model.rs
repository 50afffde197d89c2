//! A Caffe2 model as the ONNX path and the model zoo ship it: the "mobile"
//! pair of an `init_net` (fill ops that create the parameters, run once) and
//! a `predict_net` (the computation), loaded from and saved to a directory or
//! two paths. Which net is which is told by content, not by position or
//! name: an init net holds fill ops only ([`is_init_net`]).

use crate::binary::encode_netdef;
use crate::error::Caffe2Error;
use crate::file::{load_netdef, write_atomic};
use crate::proto::NetDef;
use crate::summary::{ModelSummary, is_fill_op};
use std::path::{Path, PathBuf};

/// File names [`Caffe2Model::load_dir`] tries for the init net, in order:
/// the zoo and `convert-onnx-to-caffe2` names, then detectron2's.
pub const INIT_NET_NAMES: &[&str] = &["init_net.pb", "init_net.pbtxt", "model_init.pb"];
/// File names [`Caffe2Model::load_dir`] tries for the predict net, in order.
pub const PREDICT_NET_NAMES: &[&str] = &[
    "predict_net.pb",
    "predict_net.pbtxt",
    "model.pb",
    "model.pbtxt",
];

/// True when `net` looks like an init net: it has ops, and every one is a
/// fill op ([`is_fill_op`]: creates a tensor from its arguments). A predict
/// net computes, so it has at least one other op.
pub fn is_init_net(net: &NetDef) -> bool {
    !net.op.is_empty()
        && net
            .op
            .iter()
            .all(|op| is_fill_op(op.r#type.as_deref().unwrap_or("")))
}

/// How [`Caffe2Model::from_nets`] assigned two nets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairOrder {
    /// The first net is the init net (fill ops only), the second is not.
    AsGiven,
    /// The second net is the init net: they were given predict net first.
    Swapped,
    /// Both or neither hold fill ops only; taken as given, init net first.
    Unclear,
}

/// An `init_net` + `predict_net` pair.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caffe2Model {
    /// The net that creates the weights (fill ops only).
    pub init_net: NetDef,
    /// The net that computes the outputs from the data and the weights.
    pub predict_net: NetDef,
}

impl Caffe2Model {
    /// Loads the pair from `dir`: the first of [`INIT_NET_NAMES`] and of
    /// [`PREDICT_NET_NAMES`] that exists (each binary or text, as its bytes
    /// say).
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, Caffe2Error> {
        let (init, predict) = Self::files_in_dir(dir)?;
        Self::load(init, predict)
    }

    /// The two files [`load_dir`](Self::load_dir) would read.
    pub fn files_in_dir(dir: impl AsRef<Path>) -> Result<(PathBuf, PathBuf), Caffe2Error> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            let source = match dir.metadata() {
                Ok(_) => std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
                Err(e) => e,
            };
            return Err(Caffe2Error::io(dir, source));
        }
        let find = |net: &'static str, names: &[&'static str]| {
            names
                .iter()
                .map(|name| dir.join(name))
                .find(|path| path.is_file())
                .ok_or_else(|| Caffe2Error::MissingNet {
                    dir: dir.to_path_buf(),
                    net,
                    tried: names.to_vec(),
                })
        };
        Ok((
            find("init net", INIT_NET_NAMES)?,
            find("predict net", PREDICT_NET_NAMES)?,
        ))
    }

    /// Loads the pair from two files (each binary or text).
    pub fn load(
        init_net: impl AsRef<Path>,
        predict_net: impl AsRef<Path>,
    ) -> Result<Self, Caffe2Error> {
        Ok(Caffe2Model {
            init_net: load_netdef(init_net)?,
            predict_net: load_netdef(predict_net)?,
        })
    }

    /// Makes a pair of two nets in either order, telling them apart by
    /// content ([`is_init_net`]).
    pub fn from_nets(first: NetDef, second: NetDef) -> (Self, PairOrder) {
        let order = match (is_init_net(&first), is_init_net(&second)) {
            (true, false) => PairOrder::AsGiven,
            (false, true) => PairOrder::Swapped,
            _ => PairOrder::Unclear,
        };
        let (init_net, predict_net) = match order {
            PairOrder::Swapped => (second, first),
            PairOrder::AsGiven | PairOrder::Unclear => (first, second),
        };
        (
            Caffe2Model {
                init_net,
                predict_net,
            },
            order,
        )
    }

    /// Loads a pair from two files given in either order (each binary or
    /// text); see [`from_nets`](Self::from_nets).
    pub fn load_any_order(
        first: impl AsRef<Path>,
        second: impl AsRef<Path>,
    ) -> Result<(Self, PairOrder), Caffe2Error> {
        Ok(Self::from_nets(load_netdef(first)?, load_netdef(second)?))
    }

    /// Saves the pair as `dir/init_net.pb` and `dir/predict_net.pb` (binary),
    /// creating `dir` if needed. Both files are written to temporary files
    /// first and renamed into place only when both are complete.
    pub fn save_dir(&self, dir: impl AsRef<Path>) -> Result<(), Caffe2Error> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Caffe2Error::io(dir, e))?;
        self.save(dir.join("init_net.pb"), dir.join("predict_net.pb"))
    }

    /// Saves the pair in `dir` (created if needed) as `init_net.pb` and
    /// `predict_net.pb`, and with `text` also as `init_net.pbtxt` and
    /// `predict_net.pbtxt`; every file is renamed into place only when all
    /// are complete. Returns the paths written, in that order.
    pub fn save_dir_with_text(
        &self,
        dir: impl AsRef<Path>,
        text: bool,
    ) -> Result<Vec<PathBuf>, Caffe2Error> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Caffe2Error::io(dir, e))?;
        let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        for (net, name) in [
            (&self.init_net, "init_net"),
            (&self.predict_net, "predict_net"),
        ] {
            let path = dir.join(format!("{name}.pb"));
            let bytes = encode_netdef(net).map_err(|e| match e {
                Caffe2Error::TooLarge { size, .. } => Caffe2Error::TooLarge {
                    what: path.display().to_string(),
                    size,
                },
                other => other,
            })?;
            files.push((path, bytes));
        }
        if text {
            for (net, name) in [
                (&self.init_net, "init_net"),
                (&self.predict_net, "predict_net"),
            ] {
                files.push((
                    dir.join(format!("{name}.pbtxt")),
                    crate::text::netdef_to_text(net)?.into_bytes(),
                ));
            }
        }
        let refs: Vec<(&Path, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_path(), b.as_slice()))
            .collect();
        write_atomic(&refs)?;
        Ok(files.into_iter().map(|(p, _)| p).collect())
    }

    /// Saves the pair as two binary files, as [`save_dir`](Self::save_dir) does.
    pub fn save(
        &self,
        init_net: impl AsRef<Path>,
        predict_net: impl AsRef<Path>,
    ) -> Result<(), Caffe2Error> {
        let (init_path, predict_path) = (init_net.as_ref(), predict_net.as_ref());
        let name = |e: Caffe2Error, path: &Path| match e {
            Caffe2Error::TooLarge { size, .. } => Caffe2Error::TooLarge {
                what: path.display().to_string(),
                size,
            },
            other => other,
        };
        let init = encode_netdef(&self.init_net).map_err(|e| name(e, init_path))?;
        let predict = encode_netdef(&self.predict_net).map_err(|e| name(e, predict_path))?;
        write_atomic(&[(init_path, &init), (predict_path, &predict)])
    }

    /// The summary for `netport inspect`.
    pub fn summary(&self) -> ModelSummary {
        ModelSummary::of(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Argument, OperatorDef};
    use std::fs;

    fn model() -> Caffe2Model {
        Caffe2Model {
            init_net: NetDef {
                name: Some("init".into()),
                op: vec![OperatorDef {
                    output: vec!["w".into()],
                    r#type: Some("GivenTensorFill".into()),
                    arg: vec![
                        Argument {
                            name: Some("values".into()),
                            floats: vec![1.0, 2.0],
                            ..Default::default()
                        },
                        Argument {
                            name: Some("shape".into()),
                            ints: vec![2],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            },
            predict_net: NetDef {
                name: Some("predict".into()),
                op: vec![OperatorDef {
                    input: vec!["x".into(), "w".into()],
                    output: vec!["y".into()],
                    r#type: Some("Mul".into()),
                    ..Default::default()
                }],
                external_input: vec!["x".into(), "w".into()],
                external_output: vec!["y".into()],
                ..Default::default()
            },
        }
    }

    #[test]
    fn save_and_load_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new/model");
        model().save_dir(&out).unwrap();
        assert!(out.join("init_net.pb").is_file() && out.join("predict_net.pb").is_file());
        assert_eq!(Caffe2Model::load_dir(&out).unwrap(), model());
        assert_eq!(
            Caffe2Model::load(out.join("init_net.pb"), out.join("predict_net.pb")).unwrap(),
            model()
        );
        assert_eq!(fs::read_dir(&out).unwrap().count(), 2);
    }

    #[test]
    fn a_text_predict_net_and_detectron_names_are_found() {
        let dir = tempfile::tempdir().unwrap();
        crate::save_netdef(&model().init_net, dir.path().join("model_init.pb")).unwrap();
        crate::save_netdef_text(&model().predict_net, dir.path().join("predict_net.pbtxt"))
            .unwrap();
        assert_eq!(Caffe2Model::load_dir(dir.path()).unwrap(), model());
    }

    #[test]
    fn nets_are_told_apart_by_content() {
        let m = model();
        assert!(is_init_net(&m.init_net) && !is_init_net(&m.predict_net));
        assert!(!is_init_net(&NetDef::default()));
        let given = Caffe2Model::from_nets(m.init_net.clone(), m.predict_net.clone());
        assert_eq!(given, (m.clone(), PairOrder::AsGiven));
        let swapped = Caffe2Model::from_nets(m.predict_net.clone(), m.init_net.clone());
        assert_eq!(swapped, (m.clone(), PairOrder::Swapped));
        let (both, order) = Caffe2Model::from_nets(m.init_net.clone(), m.init_net.clone());
        assert_eq!(
            (both.predict_net, order),
            (m.init_net.clone(), PairOrder::Unclear)
        );

        let dir = tempfile::tempdir().unwrap();
        m.save_dir(dir.path()).unwrap();
        let (loaded, order) = Caffe2Model::load_any_order(
            dir.path().join("predict_net.pb"),
            dir.path().join("init_net.pb"),
        )
        .unwrap();
        assert_eq!((loaded, order), (m, PairOrder::Swapped));
    }

    #[test]
    fn missing_nets_are_named() {
        let dir = tempfile::tempdir().unwrap();
        crate::save_netdef(&model().init_net, dir.path().join("init_net.pb")).unwrap();
        let e = Caffe2Model::load_dir(dir.path()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: no predict net found (looked for predict_net.pb, predict_net.pbtxt, model.pb, model.pbtxt)",
                dir.path().display()
            )
        );
        let file = dir.path().join("init_net.pb");
        assert!(Caffe2Model::load_dir(&file).is_err());
        let e = Caffe2Model::load_dir(dir.path().join("nope")).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
