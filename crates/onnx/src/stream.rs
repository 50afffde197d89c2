//! Writing a `ModelProto` without holding its tensor bytes: the one
//! mechanism behind every save of a model whose weights are inside the
//! protobuf ([`crate::save_model`], [`StreamedModel::save`], the graph
//! builder's [`crate::build::ModelBuilder::finish_streamed`]).
//!
//! The model is written field by field in the order prost writes it (field
//! number order), so the bytes equal [`crate::encode_model`]'s. Lengths come
//! first: every length prefix is computed from the encoded sizes of the
//! small parts and the byte counts of the payloads, and the 2 GiB - 1 limit
//! is checked before a byte is written. Then each initializer of the main
//! graph is written as its fields before `raw_data`, the `raw_data` key and
//! length, the payload in pieces, and its fields after. A payload is either
//! the tensor's own `raw_data` (a [`bytes::Bytes`], typically a slice of a
//! memory-mapped input, copied in [`netport_io::CHUNK`] pieces whose pages
//! are released) or a [`TensorSource`]: anything that knows its length and
//! can produce the bytes in pieces (a Caffe2 fill op's floats, a checkpoint's
//! tensor converted on the fly). Memory is the model's structure plus one
//! piece, whatever the size of the weights.

use crate::OnnxError;
use crate::check::{CheckOptions, Diagnostic, check_model};
use crate::io::MAX_PROTOBUF_BYTES;
use crate::proto::{GraphProto, ModelProto, TensorProto};
use bytes::Bytes;
use prost::Message;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// `raw_data` payloads of at least this many bytes are streamed in pieces;
/// smaller tensors are encoded whole.
const STREAM_ABOVE: usize = 64 << 10;

/// The bytes of one initializer, produced on demand: the little-endian,
/// packed `raw_data` of its tensor.
pub trait TensorSource: std::fmt::Debug {
    /// How many bytes [`write_to`](Self::write_to) writes.
    fn byte_len(&self) -> u64;

    /// Writes exactly [`byte_len`](Self::byte_len) bytes to `out`, in pieces
    /// of any size (bounded ones keep memory flat).
    fn write_to(
        &self,
        out: &mut dyn FnMut(&[u8]) -> Result<(), OnnxError>,
    ) -> Result<(), OnnxError>;
}

/// Bytes already in memory or in a map: written in [`netport_io::CHUNK`]
/// pieces, each piece's mapped pages released after it is written.
impl TensorSource for Bytes {
    fn byte_len(&self) -> u64 {
        self.len() as u64
    }

    fn write_to(
        &self,
        out: &mut dyn FnMut(&[u8]) -> Result<(), OnnxError>,
    ) -> Result<(), OnnxError> {
        for piece in netport_io::chunks(self) {
            out(piece)?;
        }
        Ok(())
    }
}

/// The sources of a [`StreamedModel`], by main-graph initializer index.
pub type Sources = Vec<(usize, Box<dyn TensorSource>)>;

/// A model and the sources of those main-graph initializers whose bytes are
/// not in it: what [`StreamedModel::save`] writes with flat memory.
#[derive(Debug, Default)]
pub struct StreamedModel {
    model: ModelProto,
    /// By index in the main graph's `initializer` list.
    sources: BTreeMap<usize, Box<dyn TensorSource>>,
}

impl StreamedModel {
    /// A model with no streamed initializer yet.
    pub fn new(model: ModelProto) -> Self {
        StreamedModel {
            model,
            sources: BTreeMap::new(),
        }
    }

    /// A model and sources already checked against its initializers.
    pub(crate) fn with_sources(
        model: ModelProto,
        sources: Vec<(usize, Box<dyn TensorSource>)>,
    ) -> Self {
        StreamedModel {
            model,
            sources: sources.into_iter().collect(),
        }
    }

    /// The model and the sources by initializer index, to change the parts
    /// of the model that hold no tensor bytes (a value renamed) and put
    /// back with [`from_parts`](Self::from_parts).
    pub fn into_parts(self) -> (ModelProto, Sources) {
        (self.model, self.sources.into_iter().collect())
    }

    /// A model and its sources, each checked as by
    /// [`set_source`](Self::set_source).
    pub fn from_parts(model: ModelProto, sources: Sources) -> Result<Self, OnnxError> {
        let mut streamed = StreamedModel::new(model);
        for (index, source) in sources {
            streamed.set_source(index, source)?;
        }
        Ok(streamed)
    }

    /// The model; the streamed initializers have no value field.
    pub fn model(&self) -> &ModelProto {
        &self.model
    }

    /// The bytes the sources write, all together.
    pub fn streamed_bytes(&self) -> u64 {
        self.sources.values().map(|s| s.byte_len()).sum()
    }

    /// How many initializers are streamed from a source.
    pub fn streamed(&self) -> usize {
        self.sources.len()
    }

    /// Gives initializer `index` of the main graph its bytes from `source`.
    /// The tensor must hold no data of its own, and the source must be as
    /// long as the tensor's dims and data type say.
    pub fn set_source(
        &mut self,
        index: usize,
        source: Box<dyn TensorSource>,
    ) -> Result<(), OnnxError> {
        let t = self
            .model
            .graph
            .as_ref()
            .and_then(|g| g.initializer.get(index))
            .ok_or_else(|| OnnxError::Tensor {
                tensor: format!("#{index}"),
                problem: "no such initializer in the main graph".into(),
            })?;
        check_source(t, source.byte_len())?;
        self.sources.insert(index, source);
        Ok(())
    }

    /// The checker's errors and warnings for the model ([`check_model`]),
    /// each streamed tensor standing in with a zero-filled `raw_data` of its
    /// length (allocated zeroed and never touched, as the checker reads no
    /// tensor bytes, so it costs address space, not memory).
    pub fn check(&self, options: &CheckOptions) -> Vec<Diagnostic> {
        let longest = self
            .sources
            .values()
            .map(|s| s.byte_len())
            .max()
            .unwrap_or(0);
        let zeros = Bytes::from(vec![0u8; usize::try_from(longest).unwrap_or(0)]);
        let mut model = self.model.clone();
        if let Some(g) = model.graph.as_mut() {
            for (&i, s) in &self.sources {
                if let Some(t) = g.initializer.get_mut(i) {
                    t.raw_data = Some(zeros.slice(..s.byte_len() as usize));
                }
            }
        }
        check_model(&model, options)
    }

    /// The encoded size in bytes.
    pub fn encoded_len(&self) -> u64 {
        Plan::of(&self.model, &self.sources).total
    }

    /// Writes the model's protobuf bytes to `out` (see the module docs);
    /// returns how many. Fails before writing anything when they would
    /// exceed [`MAX_PROTOBUF_BYTES`].
    pub fn write(
        &self,
        out: &mut dyn FnMut(&[u8]) -> Result<(), OnnxError>,
    ) -> Result<u64, OnnxError> {
        write_model(&self.model, &self.sources, out)
    }

    /// Saves the model to `path` (a temporary file renamed into place);
    /// returns the bytes written.
    pub fn save(&self, path: &Path) -> Result<u64, OnnxError> {
        save_streamed(&self.model, &self.sources, path)
    }

    /// The model with every streamed initializer's bytes read into its
    /// `raw_data` (memory: the whole model).
    pub fn into_model(self) -> Result<ModelProto, OnnxError> {
        let StreamedModel { mut model, sources } = self;
        if let Some(g) = model.graph.as_mut() {
            for (i, s) in sources {
                let mut data = Vec::with_capacity(usize::try_from(s.byte_len()).unwrap_or(0));
                s.write_to(&mut |b| {
                    data.extend_from_slice(b);
                    Ok(())
                })?;
                if let Some(t) = g.initializer.get_mut(i) {
                    t.raw_data = Some(data.into());
                }
            }
        }
        Ok(model)
    }
}

/// Refuses a source for a tensor that has data of its own or whose length
/// disagrees with its dims and data type.
pub(crate) fn check_source(t: &TensorProto, len: u64) -> Result<(), OnnxError> {
    let problem = |p: String| OnnxError::Tensor {
        tensor: t.name().to_string(),
        problem: p,
    };
    let empty = t.raw_data.is_none()
        && t.float_data.is_empty()
        && t.int32_data.is_empty()
        && t.string_data.is_empty()
        && t.int64_data.is_empty()
        && t.double_data.is_empty()
        && t.uint64_data.is_empty()
        && t.external_data.is_empty();
    if !empty {
        return Err(problem(
            "already holds data; a streamed tensor has none of its own".into(),
        ));
    }
    let bits = crate::dtype::element_bits(t.data_type())
        .ok_or_else(|| problem(format!("data type {} cannot be streamed", t.data_type())))?;
    let n = crate::numel(t)?;
    let need = n.checked_mul(bits).map(|b| b.div_ceil(8));
    if need != Some(len) {
        return Err(problem(format!(
            "dims {:?} need {} bytes of data, the source has {len}",
            t.dims,
            need.map_or("too many".to_string(), |v| v.to_string())
        )));
    }
    Ok(())
}

fn save_streamed(
    model: &ModelProto,
    sources: &BTreeMap<usize, Box<dyn TensorSource>>,
    path: &Path,
) -> Result<u64, OnnxError> {
    let mut file = netport_io::AtomicFile::create(path)?;
    let writer = file.writer();
    let n = write_model(model, sources, &mut |b| {
        writer.write_all(b).map_err(|e| OnnxError::io(path, e))
    })?;
    file.finish()?.commit()?;
    Ok(n)
}

/// One initializer's parts around its payload.
enum Part<'a> {
    /// Encoded whole.
    Whole(&'a TensorProto),
    /// Fields before `raw_data`, the payload, fields after.
    Split(Box<Split<'a>>),
}

struct Split<'a> {
    head: TensorProto,
    payload: Payload<'a>,
    tail: TensorProto,
    /// The tensor's encoded length.
    len: u64,
}

enum Payload<'a> {
    Source(&'a dyn TensorSource),
    Raw(&'a Bytes),
}

impl Payload<'_> {
    fn len(&self) -> u64 {
        match self {
            Payload::Source(s) => s.byte_len(),
            Payload::Raw(b) => b.len() as u64,
        }
    }
}

/// The model's parts and lengths, computed before anything is written.
struct Plan<'a> {
    head: ModelProto,
    tail: ModelProto,
    graph: Option<(GraphProto, Vec<Part<'a>>, GraphProto, u64)>,
    total: u64,
}

fn varint_len(v: u64) -> u64 {
    prost::encoding::encoded_len_varint(v) as u64
}

/// Key (1 byte for these field numbers) + length prefix + body.
fn field_len(body: u64) -> u64 {
    1 + varint_len(body) + body
}

impl<'a> Plan<'a> {
    fn of(model: &'a ModelProto, sources: &'a BTreeMap<usize, Box<dyn TensorSource>>) -> Self {
        // Every field named, so that a field added to the schema fails to
        // compile here instead of being dropped.
        let ModelProto {
            ir_version,
            opset_import,
            producer_name,
            producer_version,
            domain,
            model_version,
            doc_string,
            graph,
            metadata_props,
            training_info,
            functions,
            configuration,
        } = model;
        // prost writes fields by number: 1-6, graph (7), then 8 and above.
        let head = ModelProto {
            ir_version: *ir_version,
            producer_name: producer_name.clone(),
            producer_version: producer_version.clone(),
            domain: domain.clone(),
            model_version: *model_version,
            doc_string: doc_string.clone(),
            ..Default::default()
        };
        let tail = ModelProto {
            opset_import: opset_import.clone(),
            metadata_props: metadata_props.clone(),
            training_info: training_info.clone(),
            functions: functions.clone(),
            configuration: configuration.clone(),
            ..Default::default()
        };
        let mut total = head.encoded_len() as u64 + tail.encoded_len() as u64;
        let graph = graph.as_ref().map(|g| {
            let GraphProto {
                node,
                name,
                initializer,
                sparse_initializer,
                doc_string,
                input,
                output,
                value_info,
                quantization_annotation,
                metadata_props,
            } = g;
            // 1 node, 2 name, 5 initializer, then 10 and above.
            let ghead = GraphProto {
                node: node.clone(),
                name: name.clone(),
                ..Default::default()
            };
            let gtail = GraphProto {
                sparse_initializer: sparse_initializer.clone(),
                doc_string: doc_string.clone(),
                input: input.clone(),
                output: output.clone(),
                value_info: value_info.clone(),
                quantization_annotation: quantization_annotation.clone(),
                metadata_props: metadata_props.clone(),
                ..Default::default()
            };
            let mut len = ghead.encoded_len() as u64 + gtail.encoded_len() as u64;
            let parts: Vec<Part<'a>> = initializer
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let payload = match (sources.get(&i), &t.raw_data) {
                        (Some(s), _) => Payload::Source(s.as_ref()),
                        (None, Some(raw)) if raw.len() >= STREAM_ABOVE => Payload::Raw(raw),
                        _ => return Part::Whole(t),
                    };
                    let (head, tail) = split_tensor(t);
                    let body = head.encoded_len() as u64
                        + field_len(payload.len())
                        + tail.encoded_len() as u64;
                    Part::Split(Box::new(Split {
                        head,
                        payload,
                        tail,
                        len: body,
                    }))
                })
                .collect();
            for p in &parts {
                len += field_len(match p {
                    Part::Whole(t) => t.encoded_len() as u64,
                    Part::Split(split) => split.len,
                });
            }
            (ghead, parts, gtail, len)
        });
        if let Some((_, _, _, len)) = &graph {
            total += field_len(*len);
        }
        Plan {
            head,
            tail,
            graph,
            total,
        }
    }
}

/// A tensor's fields before `raw_data` (numbers 1-8) and after it (10 and
/// above), each as a tensor of its own.
fn split_tensor(t: &TensorProto) -> (TensorProto, TensorProto) {
    let TensorProto {
        dims,
        data_type,
        segment,
        float_data,
        int32_data,
        string_data,
        int64_data,
        name,
        doc_string,
        raw_data: _,
        external_data,
        data_location,
        double_data,
        uint64_data,
        metadata_props,
    } = t;
    (
        TensorProto {
            dims: dims.clone(),
            data_type: *data_type,
            segment: *segment,
            float_data: float_data.clone(),
            int32_data: int32_data.clone(),
            string_data: string_data.clone(),
            int64_data: int64_data.clone(),
            name: name.clone(),
            ..Default::default()
        },
        TensorProto {
            doc_string: doc_string.clone(),
            external_data: external_data.clone(),
            data_location: *data_location,
            double_data: double_data.clone(),
            uint64_data: uint64_data.clone(),
            metadata_props: metadata_props.clone(),
            ..Default::default()
        },
    )
}

/// Writes `model` with the main graph's initializers streamed (see the
/// module docs); returns the bytes written.
pub(crate) fn write_model(
    model: &ModelProto,
    sources: &BTreeMap<usize, Box<dyn TensorSource>>,
    out: &mut dyn FnMut(&[u8]) -> Result<(), OnnxError>,
) -> Result<u64, OnnxError> {
    let plan = Plan::of(model, sources);
    if plan.total > MAX_PROTOBUF_BYTES {
        return Err(OnnxError::TooLarge { size: plan.total });
    }
    let mut buf = Vec::new();
    let mut written = 0u64;
    let mut put = |bytes: &[u8], written: &mut u64| -> Result<(), OnnxError> {
        *written += bytes.len() as u64;
        out(bytes)
    };
    plan.head.encode_raw(&mut buf);
    if let Some((ghead, parts, gtail, len)) = &plan.graph {
        // ModelProto.graph: field 7, length-delimited.
        buf.push(0x3a);
        prost::encoding::encode_varint(*len, &mut buf);
        ghead.encode_raw(&mut buf);
        for part in parts {
            match part {
                Part::Whole(t) => {
                    // GraphProto.initializer: field 5.
                    prost::encoding::message::encode(5, *t, &mut buf);
                }
                Part::Split(split) => {
                    let Split {
                        head,
                        payload,
                        tail,
                        len,
                    } = split.as_ref();
                    buf.push(0x2a);
                    prost::encoding::encode_varint(*len, &mut buf);
                    head.encode_raw(&mut buf);
                    // TensorProto.raw_data: field 9.
                    buf.push(0x4a);
                    prost::encoding::encode_varint(payload.len(), &mut buf);
                    put(&buf, &mut written)?;
                    buf.clear();
                    let mut n = 0u64;
                    let mut piece = |b: &[u8]| {
                        n += b.len() as u64;
                        put(b, &mut written)
                    };
                    match payload {
                        Payload::Source(s) => s.write_to(&mut piece)?,
                        Payload::Raw(b) => TensorSource::write_to(*b, &mut piece)?,
                    }
                    if n != payload.len() {
                        return Err(OnnxError::Tensor {
                            tensor: head.name().to_string(),
                            problem: format!(
                                "its source wrote {n} bytes after announcing {}",
                                payload.len()
                            ),
                        });
                    }
                    tail.encode_raw(&mut buf);
                }
            }
            if buf.len() >= STREAM_ABOVE {
                put(&buf, &mut written)?;
                buf.clear();
            }
        }
        gtail.encode_raw(&mut buf);
    }
    plan.tail.encode_raw(&mut buf);
    put(&buf, &mut written)?;
    debug_assert_eq!(written, plan.total);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tensor_proto::DataType;
    use crate::proto::{NodeProto, OperatorSetIdProto, StringStringEntryProto, ValueInfoProto};

    fn tensor(name: &str, n: usize, doc: bool) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            dims: vec![n as i64],
            data_type: Some(DataType::Float as i32),
            raw_data: Some(
                (0..n)
                    .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            doc_string: doc.then(|| "d".to_string()),
            metadata_props: vec![StringStringEntryProto {
                key: Some("k".into()),
                value: Some("v".into()),
            }],
            ..Default::default()
        }
    }

    fn model() -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            producer_name: Some("p".into()),
            doc_string: Some("doc".into()),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(17),
            }],
            metadata_props: vec![StringStringEntryProto {
                key: Some("a".into()),
                value: Some("b".into()),
            }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: vec![NodeProto {
                    op_type: Some("Add".into()),
                    input: vec!["big".into(), "small".into()],
                    output: vec!["y".into()],
                    ..Default::default()
                }],
                initializer: vec![
                    tensor("big", 40_000, true),
                    tensor("small", 3, false),
                    tensor("big2", 20_000, false),
                ],
                doc_string: Some("gd".into()),
                input: vec![ValueInfoProto {
                    name: Some("x".into()),
                    ..Default::default()
                }],
                output: vec![ValueInfoProto {
                    name: Some("y".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn written(s: &StreamedModel) -> Vec<u8> {
        let mut out = Vec::new();
        let n = s
            .write(&mut |b| {
                out.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(n, out.len() as u64);
        assert_eq!(s.encoded_len(), n);
        out
    }

    #[test]
    fn bytes_equal_prost_with_raw_data_inline() {
        let m = model();
        assert_eq!(written(&StreamedModel::new(m.clone())), m.encode_to_vec());
        let empty = ModelProto::default();
        assert_eq!(
            written(&StreamedModel::new(empty.clone())),
            empty.encode_to_vec()
        );
    }

    #[test]
    fn sources_give_the_same_bytes_as_inline_data() {
        let full = model();
        let mut stripped = full.clone();
        let g = stripped.graph.as_mut().unwrap();
        let big = g.initializer[0].raw_data.take().unwrap();
        let small = g.initializer[1].raw_data.take().unwrap();
        let mut s = StreamedModel::new(stripped);
        s.set_source(0, Box::new(big.clone())).unwrap();
        s.set_source(1, Box::new(small)).unwrap();
        assert_eq!(written(&s), full.encode_to_vec());
        // Taken apart and put back: the same bytes; a source moved to a
        // tensor of another length is refused.
        let (m, sources) = s.into_parts();
        assert_eq!(sources.len(), 2);
        let moved: Sources = sources
            .into_iter()
            .map(|(i, src)| (if i == 1 { 2 } else { i }, src))
            .collect();
        let mut m2 = m.clone();
        m2.graph.as_mut().unwrap().initializer[2].raw_data = None;
        assert!(StreamedModel::from_parts(m2, moved).is_err());
        let s = StreamedModel::from_parts(m, {
            let g = full.graph.as_ref().unwrap();
            vec![
                (
                    0,
                    Box::new(g.initializer[0].raw_data.clone().unwrap()) as Box<dyn TensorSource>,
                ),
                (1, Box::new(g.initializer[1].raw_data.clone().unwrap())),
            ]
        })
        .unwrap();
        assert_eq!(s.streamed_bytes(), 160_012);
        assert_eq!(written(&s), full.encode_to_vec());
        assert!(
            s.check(&CheckOptions::default())
                .iter()
                .all(|d| !d.message.contains("raw_data")),
            "{:?}",
            s.check(&CheckOptions::default())
        );
        assert_eq!(s.into_model().unwrap(), full);
    }

    #[test]
    fn the_builder_streams_sources_and_borrows_bytes() {
        use crate::build::{Dim, ModelBuilder};
        use netport_tensor::DType;
        let data: Vec<u8> = (0..3000u32)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        let bytes = Bytes::from(data);
        let build = |streamed: bool| {
            let mut m = ModelBuilder::new("g", &[("", 17)]).unwrap();
            let g = m.graph();
            g.input("x", DType::Float32, &[Dim::Fixed(1000), Dim::Fixed(3)])
                .unwrap();
            if streamed {
                g.initializer_source("w", DType::Float32, &[1000, 3], Box::new(bytes.clone()))
                    .unwrap();
            } else {
                g.initializer_bytes("w", DType::Float32, &[1000, 3], bytes.clone())
                    .unwrap();
            }
            g.node("Add", &["x", "w"], &["y"]).add().unwrap();
            g.output("y", DType::Float32, &[Dim::Fixed(1000), Dim::Fixed(3)])
                .unwrap();
            m
        };
        let inline = build(false).finish().unwrap();
        // Zero copy: the initializer shares the caller's buffer.
        let raw = inline.graph.as_ref().unwrap().initializer[0]
            .raw_data
            .clone()
            .unwrap();
        assert_eq!(raw.as_ptr(), bytes.as_ptr());
        let streamed = build(true).finish_streamed().unwrap();
        assert_eq!(streamed.streamed(), 1);
        assert_eq!(written(&streamed), inline.encode_to_vec());
        // A length that disagrees with the dims is refused when added.
        let mut m = ModelBuilder::new("g", &[("", 17)]).unwrap();
        let e = m
            .graph()
            .initializer_source("w", DType::Float32, &[7], Box::new(bytes.clone()))
            .unwrap_err();
        assert!(e.to_string().contains("need 28 bytes"), "{e}");
    }

    #[test]
    fn wrong_sources_are_refused() {
        let full = model();
        let mut s = StreamedModel::new(full.clone());
        // Has its own data.
        let data = full.graph.as_ref().unwrap().initializer[0]
            .raw_data
            .clone()
            .unwrap();
        assert!(s.set_source(0, Box::new(data)).is_err());
        let mut stripped = full;
        stripped.graph.as_mut().unwrap().initializer[0].raw_data = None;
        let mut s = StreamedModel::new(stripped);
        let e = s
            .set_source(0, Box::new(Bytes::from(vec![0u8; 12])))
            .unwrap_err();
        assert!(e.to_string().contains("160000 bytes"), "{e}");
        assert!(s.set_source(9, Box::new(Bytes::new())).is_err());
    }
}
