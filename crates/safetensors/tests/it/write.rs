//! The streamed writer and the shard index, through the crate's own reader.

use std::borrow::Cow;
use std::collections::BTreeSet;

use netport_safetensors::index::map_to_shard;
use netport_safetensors::write::{hf_metadata, layout, write_finished};
use netport_safetensors::{OutTensor, SafetensorsError, SafetensorsFile, ShardIndex};
use netport_tensor::DType;

fn names(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn tensors() -> Vec<OutTensor> {
    vec![
        OutTensor {
            name: "b.small".into(),
            dtype: DType::Float16,
            shape: vec![3],
            nbytes: 6,
            source: 0,
        },
        OutTensor {
            name: "a.weight".into(),
            dtype: DType::Float32,
            shape: vec![2, 2],
            nbytes: 16,
            source: 1,
        },
    ]
}

fn data(i: usize) -> Vec<u8> {
    match i {
        0 => vec![1, 2, 3, 4, 5, 6],
        _ => (0..16).collect(),
    }
}

#[test]
fn writes_what_the_reader_accepts_with_hf_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    let meta = hf_metadata(&[("lm_head.weight".into(), "a.weight".into())]);
    let (header, order) = layout(tensors(), &meta).unwrap();
    // Largest element first: f32 before f16; the header is padded to 8.
    assert_eq!(order[0].name, "a.weight");
    assert_eq!((header.len() - 8) % 8, 0);
    let (finished, total) = write_finished::<SafetensorsError>(&out, &header, &order, |t| {
        Ok(Cow::Owned(data(t.source)))
    })
    .unwrap();
    assert!(!out.exists(), "not renamed before commit");
    assert_eq!(finished.commit().unwrap(), total);
    let f = SafetensorsFile::open(&out).unwrap();
    assert_eq!(f.metadata().get("format").map(String::as_str), Some("pt"));
    assert_eq!(
        f.aliases(),
        [("lm_head.weight".to_owned(), "a.weight".to_owned())]
    );
    let a = f.tensor("a.weight").unwrap();
    assert_eq!(f.tensor_bytes(a), &data(1)[..]);
    let view = f.view(a).unwrap();
    assert_eq!(
        (view.shape(), view.dtype()),
        (&[2u64, 2][..], DType::Float32)
    );
    assert_eq!(view.to_contiguous().unwrap(), data(1));
    assert_eq!(f.tensor_bytes(f.tensor("b.small").unwrap()), &data(0)[..]);
    assert_eq!(
        names(dir.path()),
        BTreeSet::from(["m.safetensors".to_owned()])
    );
}

#[test]
fn a_failing_fetch_or_a_short_tensor_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    let (header, order) = layout(tensors(), &Default::default()).unwrap();
    let e = write_finished::<SafetensorsError>(&out, &header, &order, |t| {
        if t.source == 0 {
            Err(SafetensorsError::Refused("cannot read b.small".into()))
        } else {
            Ok(Cow::Owned(data(1)))
        }
    })
    .unwrap_err();
    assert_eq!(e.to_string(), "cannot read b.small");
    let e =
        write_finished::<SafetensorsError>(&out, &header, &order, |_| Ok(Cow::Owned(vec![0; 3])))
            .unwrap_err();
    assert!(e.to_string().contains("expected 16"), "{e}");
    assert!(names(dir.path()).is_empty());
}

#[test]
fn shard_index_rules() {
    let idx = ShardIndex::parse(
        br#"{"metadata": {"total_size": 22}, "weight_map": {"a": "s-1.safetensors", "b": "s-2.safetensors", "c": "s-1.safetensors"}}"#,
    )
    .unwrap();
    assert_eq!(idx.shards(), ["s-1.safetensors", "s-2.safetensors"]);
    for bad in [
        &br#"{"weight_map": {"a": "../x"}}"#[..],
        br#"{"weight_map": {"a": 1}}"#,
        br#"[1]"#,
        br#"{"metadata": 3, "weight_map": {}}"#,
    ] {
        let e = ShardIndex::parse(bad).unwrap_err();
        assert!(e.to_string().starts_with("safetensors: index: "), "{e}");
    }
    let mut map = Default::default();
    map_to_shard(&mut map, ["a".to_owned()], "s-1").unwrap();
    let e = map_to_shard(&mut map, ["a".to_owned()], "s-2").unwrap_err();
    assert!(e.to_string().contains("both 's-1' and 's-2'"), "{e}");
}
