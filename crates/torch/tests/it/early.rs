//! Plain tensors taken while the object pickle runs
//! (`Options::early_tensors`, the default) read exactly as the walk of the
//! whole value graph reads them, and tensors read in place
//! (`Checkpoint::tensor_refs`, `Checkpoint::storage_refs`) are what the unpacked lists hold: every committed checkpoint fixture (made by
//! real torch, broken and malicious ones included) opened both ways and
//! compared field by field, errors included, and hand-built pickles for what
//! the fixtures lack: a tensor reached twice through the memo, a persistent
//! id and a size tuple read again later, duplicated arguments, metadata, a
//! state dict reached twice (its repr shows the taken tensors), and the
//! errors of arguments that do not read.

use std::path::{Path, PathBuf};

use netport_torch::{Checkpoint, Leaf, Options, TorchError};

use crate::hostile::{checkpoint, dict_pickle, f32s, int, pid, rebuild_v2, tensor, tuple, unicode};

fn open(bytes: &[u8], early: bool) -> Result<Checkpoint, TorchError> {
    let options = Options {
        early_tensors: early,
        ..Options::default()
    };
    Checkpoint::from_bytes(bytes.to_vec(), &options)
}

/// Open `bytes` both ways and require the same result; the early one.
fn same(what: &str, bytes: &[u8]) -> Result<Checkpoint, TorchError> {
    let (early, late) = (open(bytes, true), open(bytes, false));
    match (&early, &late) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.format(), b.format(), "{what}");
            assert_eq!(a.info(), b.info(), "{what}");
            assert_eq!(a.pickles(), b.pickles(), "{what}");
            assert_eq!(a.tensors(), b.tensors(), "{what}");
            // Read in place, they are what the unpacked list holds.
            let refs: Vec<_> = a.tensor_refs().map(|t| t.to_tensor()).collect();
            assert_eq!(refs, a.tensors(), "{what}");
            for (i, t) in a.tensors().iter().enumerate() {
                let r = a.tensor_ref(i).unwrap();
                assert_eq!(
                    (r.path(), r.shape(), r.device(), r.byte_range()),
                    (
                        t.path.as_str(),
                        t.shape.as_slice(),
                        &*t.device,
                        t.byte_range.clone()
                    ),
                    "{what}"
                );
            }
            assert_eq!(a.storages(), b.storages(), "{what}");
            // Storages read in place are what the unpacked list holds.
            let refs: Vec<_> = a.storage_refs().map(|s| s.to_storage()).collect();
            assert_eq!(refs, a.storages(), "{what}");
            for (i, s) in a.storages().iter().enumerate() {
                let r = a.storage_ref(i).unwrap();
                assert_eq!(r.index(), i, "{what}");
                assert_eq!(
                    (
                        r.key(),
                        r.record(),
                        r.byte_range(),
                        r.compressed(),
                        r.nbytes()
                    ),
                    (
                        &*s.key,
                        s.record.as_deref(),
                        s.byte_range.clone(),
                        s.compressed,
                        s.nbytes()
                    ),
                    "{what}"
                );
                assert_eq!(r.tensors().collect::<Vec<_>>(), s.tensors, "{what}");
                assert_eq!(
                    (r.tensor_count(), r.first_tensor()),
                    (s.tensors.len(), s.tensors.first().map(String::as_str)),
                    "{what}"
                );
            }
            assert_eq!(a.values(), b.values(), "{what}");
            assert_eq!(a.tree(), b.tree(), "{what}");
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}"),
        (a, b) => panic!(
            "{what}: early {:?}, late {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ),
    }
    early
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for e in read.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p
            .extension()
            .is_some_and(|x| matches!(x.to_str(), Some("pt" | "pth" | "pt2")))
        {
            out.push(p);
        }
    }
}

#[test]
fn every_fixture_reads_the_same_with_and_without_early_tensors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(
        all.len() >= 35,
        "{} fixtures under {}",
        all.len(),
        root.display()
    );
    // The peer corpus's checkpoints too, when it is there (CI's interop
    // run): resnet18 saved by torch.jit and torch.export.
    if let Some(peers) = std::env::var_os("NETPORT_PEERS") {
        files(Path::new(&peers), &mut all);
    }
    let mut taken = 0;
    for path in &all {
        let bytes = std::fs::read(path).unwrap();
        if let Ok(c) = same(&path.display().to_string(), &bytes) {
            taken += c.tensors().len();
        }
    }
    assert!(taken > 100, "{taken} tensors read");
}

const BINPUT: u8 = b'q';
const BINGET: u8 = b'h';

fn put(mut v: Vec<u8>, i: u8) -> Vec<u8> {
    v.extend([BINPUT, i]);
    v
}

fn get(i: u8) -> Vec<u8> {
    vec![BINGET, i]
}

fn cpu_pid(key: &str, numel: i32) -> Vec<u8> {
    pid("FloatStorage", key, unicode("cpu"), numel)
}

fn ckpt(items: &[(&str, Vec<u8>)]) -> Vec<u8> {
    checkpoint(
        dict_pickle(items),
        &f32s(&[1.0, 2.0, 3.0, 4.0]),
        vec![],
        false,
    )
}

#[test]
fn a_tensor_reached_twice_through_the_memo_is_listed_at_both_paths() {
    let t = put(tensor(cpu_pid("0", 4), 0, &[2, 2], &[2, 1]), 9);
    let c = same("tied", &ckpt(&[("a", t), ("b", get(9))])).unwrap();
    let paths: Vec<_> = c.tensors().iter().map(|t| t.path.as_str()).collect();
    assert_eq!(paths, ["a", "b"]);
    assert_eq!(c.storages().len(), 1);
    assert_eq!(c.storages()[0].tensors, ["a", "b"]);
}

#[test]
fn arguments_read_again_later_stay_readable() {
    // The persistent id of `a` is read again by `b`; the size tuple of `a`
    // is read again as the value `s`.
    let pid_a = put(cpu_pid("0", 4), 7);
    let mut size = tuple(&[int(4)]);
    size = put(size, 8);
    let a = rebuild_v2(pid_a, int(0), size, tuple(&[int(1)]), None);
    let b = rebuild_v2(get(7), int(2), tuple(&[int(2)]), tuple(&[int(1)]), None);
    let c = same("reread", &ckpt(&[("a", a), ("b", b), ("s", get(8))])).unwrap();
    assert_eq!(c.tensors().len(), 2);
    assert_eq!(c.tensors()[1].storage_offset, 2);
    let s = c.values().iter().find(|v| v.path == "s.0").unwrap();
    assert!(matches!(s.leaf, Leaf::Int(4)), "{s:?}");
}

#[test]
fn duplicated_arguments_are_kept() {
    // DUP the argument tuple, POP the copy, then REDUCE.
    let mut t = tensor(cpu_pid("0", 4), 0, &[4], &[1]);
    let reduce = t.pop().unwrap();
    t.extend([b'2', b'0', reduce]);
    let c = same("dup", &ckpt(&[("w", t)])).unwrap();
    assert_eq!(c.tensors()[0].shape, [4]);
}

#[test]
fn a_state_dict_reached_twice_shows_its_tensors_in_the_repr() {
    let inner = {
        let mut v = vec![b'}', b'('];
        v.extend(unicode("w"));
        v.extend(tensor(cpu_pid("0", 4), 0, &[2, 2], &[2, 1]));
        v.push(b'u');
        put(v, 5)
    };
    let c = same("alias", &ckpt(&[("model", inner), ("ema", get(5))])).unwrap();
    let ema = c.values().iter().find(|v| v.path == "ema").unwrap();
    assert!(matches!(ema.leaf, Leaf::Alias { .. }), "{ema:?}");
    assert_eq!(ema.repr, "{'w': tensor(shape=[2, 2])}");
}

#[test]
fn metadata_and_unreadable_arguments_go_through_the_walk() {
    // conj metadata: a seventh argument, not taken.
    let mut meta = vec![b'}', b'('];
    meta.extend(unicode("neg"));
    meta.push(0x88);
    meta.push(b'u');
    let t = rebuild_v2(
        cpu_pid("0", 4),
        int(0),
        tuple(&[int(4)]),
        tuple(&[int(1)]),
        Some(meta),
    );
    let c = same("metadata", &ckpt(&[("w", t)])).unwrap();
    assert!(c.tensors()[0].neg);
    // Errors: a negative offset, sizes and strides of different lengths,
    // a view past its storage, a storage declared with two sizes.
    for (what, items) in [
        (
            "offset",
            vec![("w", tensor(cpu_pid("0", 4), -1, &[4], &[1]))],
        ),
        (
            "lengths",
            vec![("w", tensor(cpu_pid("0", 4), 0, &[4], &[1, 1]))],
        ),
        (
            "bounds",
            vec![("w", tensor(cpu_pid("0", 4), 2, &[4], &[1]))],
        ),
        (
            "sizes",
            vec![
                ("a", tensor(cpu_pid("0", 4), 0, &[4], &[1])),
                ("b", tensor(cpu_pid("0", 2), 0, &[2], &[1])),
            ],
        ),
    ] {
        let e = same(what, &ckpt(&items)).unwrap_err().to_string();
        assert!(e.contains("'w'") || e.contains("'b'"), "{what}: {e}");
    }
}

#[test]
fn data_pkl_read_before_the_directory_is_used_only_where_the_directory_puts_it() {
    // `data.pkl` is the first record: it runs from its local header while
    // the directory is read. A record cut short (its STOP lies past the
    // record's end, in the next local header) must not be read from the
    // bytes after it: the error is the one of the record alone.
    let mut pkl = dict_pickle(&[("w", tensor(cpu_pid("0", 4), 0, &[4], &[1]))]);
    let whole = same(
        "whole",
        &checkpoint(pkl.clone(), &f32s(&[1.0; 4]), vec![], false),
    );
    assert_eq!(whole.unwrap().tensors().len(), 1);
    pkl.truncate(pkl.len() - 2);
    let cut = checkpoint(pkl, &f32s(&[1.0; 4]), vec![], false);
    let e = same("cut", &cut).unwrap_err().to_string();
    assert!(e.contains("data.pkl"), "{e}");
    // Not first: read after the directory, as every other record.
    let late = {
        use crate::hostile::{entry, zip};
        let pkl = dict_pickle(&[("w", tensor(cpu_pid("0", 4), 0, &[4], &[1]))]);
        zip(
            &[
                entry("a/version", b"3\n"),
                entry("a/data.pkl", &pkl),
                entry("a/data/0", &f32s(&[2.0; 4])),
            ],
            false,
        )
    };
    let c = same("late", &late).unwrap();
    assert_eq!(
        &c.tensor_bytes(&c.tensors()[0]).unwrap()[..],
        &f32s(&[2.0; 4])[..]
    );
}
