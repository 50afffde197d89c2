//! The storages of an opened checkpoint, kept packed: a 40-byte record per
//! storage over one text buffer (its record name, which ends with its key)
//! and one table of shared names (pickles, storage types, locations), with
//! the paths of its users as spans of the walk's text. [`StorageRef`] reads
//! one in place; [`Checkpoint::storages`](crate::Checkpoint::storages)
//! unpacks them all on request.
//!
//! A storage the packed form cannot hold (a record name that is not
//! `<dir>/<key>`, a located range other than its declared size, offsets
//! past `u32`) is kept as a whole [`Storage`].

use std::hash::BuildHasher;
use std::ops::Range;
use std::sync::Arc;

use foldhash::HashMap;
use netport_tensor::DType;

use crate::objects::{Span, Storage};

/// One storage as the walk records it.
#[derive(Debug, Clone, Copy)]
struct PackedStorage {
    /// The record name (`data/7`), or the key alone without a record; with
    /// [`PackedStorage::FULL`], `text.start` is the index in
    /// [`Storages::full`].
    text: Span,
    numel: u64,
    /// Start of the storage's bytes in the file, once located; they run for
    /// its declared size.
    start: u64,
    /// Where the key starts in `text`.
    key_at: u16,
    /// Pickle, storage type and location: indices in [`Storages::names`]
    /// (a checkpoint has a few of each; past 255 a storage is kept whole).
    source: u8,
    storage_type: u8,
    location: u8,
    dtype: DType,
    flags: u8,
}

const _: () = assert!(std::mem::size_of::<PackedStorage>() == 32);

impl PackedStorage {
    /// `text` is a record name, the key its end.
    const RECORD: u8 = 1;
    const COMPRESSED: u8 = 2;
    const LOCATED: u8 = 4;
    /// Not packed: the storage is `full[text.start]`.
    const FULL: u8 = 8;
}

/// Distinct names (pickles, storage types, locations) by a `u16` index,
/// each kept once. Each of three fields (the caller's: a storage's pickle,
/// type and location) first tries the name it took last, as records in a
/// row share them.
#[derive(Debug, Default)]
pub(crate) struct Names {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u16>,
    last: [u16; 3],
}

impl Names {
    /// The index of `name` for field `field` (0, 1 or 2), added if new;
    /// `None` past `u16` indices.
    pub(crate) fn index(&mut self, field: usize, name: &str) -> Option<u16> {
        let last = self.last[field];
        if self
            .names
            .get(usize::from(last))
            .is_some_and(|n| **n == *name)
        {
            return Some(last);
        }
        let i = self.find_or_add(name)?;
        self.last[field] = i;
        Some(i)
    }

    /// The index of `name`, added if new; `None` past `u16` indices.
    fn find_or_add(&mut self, name: &str) -> Option<u16> {
        if let Some(&i) = self.ids.get(name) {
            return Some(i);
        }
        let i = u16::try_from(self.names.len()).ok()?;
        let name: Arc<str> = name.into();
        self.names.push(name.clone());
        self.ids.insert(name, i);
        Some(i)
    }

    /// The name at an index [`index`](Self::index) gave.
    pub(crate) fn get(&self, i: u16) -> &Arc<str> {
        &self.names[usize::from(i)]
    }

    /// The one shared copy of `name` (added if new), for values that hold
    /// an `Arc` (a tensor's device); past `u16` indices, a new copy.
    pub(crate) fn shared(&mut self, name: &str) -> Arc<str> {
        match self.find_or_add(name) {
            Some(i) => self.get(i).clone(),
            None => name.into(),
        }
    }
}

/// The hash of a (record directory, key) that [`Storages::lookup`] did not
/// find.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyHash(u64);

/// What a new storage is declared as (the walk's view of a persistent id).
pub(crate) struct NewStorage<'a> {
    /// The record directory (`data`), none for legacy files.
    pub dir: Option<&'a str>,
    pub key: &'a str,
    pub source: &'a Arc<str>,
    pub storage_type: &'a str,
    pub dtype: DType,
    pub numel: u64,
    pub location: &'a str,
}

/// Every storage of a checkpoint, packed. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Storages {
    records: Vec<PackedStorage>,
    /// Record names (and keys), back to back.
    text: String,
    /// Pickle names (field 0), storage types (1) and locations (2).
    names: Names,
    /// Storages the packed form cannot hold.
    full: Vec<Storage>,
    /// Every storage declared by a pickle, by (record directory, key).
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// `(storage, user path, tensors recorded before it)` in walk order,
    /// until [`Storages::finish`]: users other than the tensors that are
    /// their storage's users themselves (most of them; see `finish`).
    users: Vec<(u32, Span, u32)>,
    /// Then: storage `i`'s users are `user_spans[user_start[i]..user_start[i + 1]]`.
    user_start: Vec<u32>,
    user_spans: Vec<Span>,
}

impl Storages {
    /// The one shared copy of a name (a device, a storage type) for values
    /// that hold an `Arc`, from the storages' own table of names.
    pub(crate) fn intern(&mut self, name: &str) -> Arc<str> {
        self.names.shared(name)
    }

    /// Number of storages.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Room for `n` more storages (a hint).
    pub(crate) fn reserve(&mut self, n: usize) {
        self.records.reserve_exact(n);
        // (No room for users: a tensor is its storage's user itself.)
        self.text.reserve(n.saturating_mul(16));
        let (hasher, records, text, full) = (&self.hasher, &self.records, &self.text, &self.full);
        self.index.reserve(n, |&i| {
            hasher.hash_one(dir_key(records, text, full, i as usize))
        });
    }

    /// The storage declared under (`dir`, `key`) by an earlier pickle.
    pub(crate) fn find(&self, dir: Option<&str>, key: &str) -> Option<usize> {
        self.lookup(dir, key).ok()
    }

    /// The storage declared under (`dir`, `key`), or the hash to
    /// [`declare`](Self::declare) it with.
    pub(crate) fn lookup(&self, dir: Option<&str>, key: &str) -> Result<usize, KeyHash> {
        let (records, text, full) = (&self.records, &self.text, &self.full);
        let hash = self.hasher.hash_one((dir, key));
        self.index
            .find(hash, |&i| {
                dir_key(records, text, full, i as usize) == (dir, key)
            })
            .map(|&i| i as usize)
            .ok_or(KeyHash(hash))
    }

    /// Add a storage a pickle declares, not found under its directory and
    /// key by [`lookup`](Self::lookup) (which gave `hash`), findable by
    /// them.
    pub(crate) fn declare(&mut self, new: &NewStorage<'_>, hash: KeyHash) -> usize {
        let index = self.records.len();
        match self.pack_new(new) {
            Some(p) => self.records.push(p),
            None => {
                let storage = Storage {
                    key: new.key.into(),
                    record: new.dir.map(|d| format!("{d}/{}", new.key)),
                    source: new.source.clone(),
                    storage_type: new.storage_type.into(),
                    dtype: new.dtype,
                    numel: new.numel,
                    location: new.location.into(),
                    byte_range: 0..0,
                    compressed: false,
                    tensors: Vec::new(),
                };
                self.push_full(storage);
            }
        }
        let hash = hash.0;
        let (hasher, records, text, full) = (&self.hasher, &self.records, &self.text, &self.full);
        // Fewer than u32::MAX storages: each is a value of a pickle bounded
        // by max_nodes.
        let id = u32::try_from(index).unwrap_or(u32::MAX);
        self.index.insert_unique(hash, id, |&i| {
            hasher.hash_one(dir_key(records, text, full, i as usize))
        });
        index
    }

    /// Add a storage that no pickle declares by key (`.pt2` weights).
    pub(crate) fn push(&mut self, s: Storage) -> usize {
        let index = self.records.len();
        let packed = s
            .record
            .as_deref()
            .and_then(|r| r.strip_suffix(&*s.key)?.strip_suffix('/'))
            .filter(|_| s.byte_range.is_empty() && !s.compressed && s.tensors.is_empty())
            .and_then(|dir| {
                self.pack_new(&NewStorage {
                    dir: Some(dir),
                    key: &s.key,
                    source: &s.source,
                    storage_type: &s.storage_type,
                    dtype: s.dtype,
                    numel: s.numel,
                    location: &s.location,
                })
            });
        match packed {
            Some(p) => self.records.push(p),
            None => self.push_full(s),
        }
        index
    }

    fn push_full(&mut self, s: Storage) {
        let at = u32::try_from(self.full.len()).unwrap_or(u32::MAX);
        self.full.push(s);
        self.records.push(PackedStorage {
            text: Span { start: at, len: 0 },
            numel: 0,
            start: 0,
            key_at: 0,
            source: 0,
            storage_type: 0,
            location: 0,
            dtype: DType::UInt8,
            flags: PackedStorage::FULL,
        });
    }

    fn pack_new(&mut self, new: &NewStorage<'_>) -> Option<PackedStorage> {
        let mut name = |field, name| u8::try_from(self.names.index(field, name)?).ok();
        let source = name(0, new.source)?;
        let storage_type = name(1, new.storage_type)?;
        let location = name(2, new.location)?;
        let start = u32::try_from(self.text.len()).ok()?;
        let (key_at, flags) = match new.dir {
            Some(d) => (u16::try_from(d.len() + 1).ok()?, PackedStorage::RECORD),
            None => (0, 0),
        };
        let len = u32::try_from(usize::from(key_at) + new.key.len()).ok()?;
        start.checked_add(len)?;
        if let Some(d) = new.dir {
            self.text.push_str(d);
            self.text.push('/');
        }
        self.text.push_str(new.key);
        Some(PackedStorage {
            text: Span { start, len },
            numel: new.numel,
            start: 0,
            key_at,
            source,
            storage_type,
            location,
            dtype: new.dtype,
            flags,
        })
    }

    /// Record that the value at `path` (a span of the walk's text) uses
    /// storage `index`.
    /// `tensors`: how many tensors the walk has recorded so far.
    pub(crate) fn add_user(&mut self, index: usize, path: Span, tensors: usize) {
        if let (Ok(i), Ok(t)) = (u32::try_from(index), u32::try_from(tensors)) {
            self.users.push((i, path, t));
        }
    }

    /// Record a user whose path is past the walk text's offsets: its
    /// storage becomes a whole [`Storage`] holding it (after the users
    /// recorded as spans, which all came earlier).
    pub(crate) fn add_user_path(&mut self, index: usize, path: &str) {
        if index >= self.records.len() {
            return;
        }
        let full = self.make_full(index);
        self.full[full].tensors.push(path.to_owned());
    }

    /// The index in `full` of storage `index`, unpacking it there first.
    fn make_full(&mut self, index: usize) -> usize {
        let p = self.records[index];
        if p.flags & PackedStorage::FULL != 0 {
            return p.text.start as usize;
        }
        let mut s = self.unpack_fields(&p);
        s.tensors = Vec::new();
        let at = self.full.len();
        self.full.push(s);
        let r = &mut self.records[index];
        // The index keeps finding it: dir_key reads the whole storage.
        r.flags = PackedStorage::FULL;
        r.text = Span {
            start: u32::try_from(at).unwrap_or(u32::MAX),
            len: 0,
        };
        at
    }

    /// Group the users by storage, in walk order. Call once every pickle
    /// has been walked.
    ///
    /// `tensor_users` yields, for every tensor the walk recorded in order,
    /// the (storage, path) it uses when it was recorded as that storage's
    /// user itself rather than through [`add_user`](Self::add_user): merged
    /// with the other users in walk order.
    pub(crate) fn finish(
        &mut self,
        tensor_users: impl Iterator<Item = Option<(u32, Span)>> + Clone,
    ) {
        let users = std::mem::take(&mut self.users);
        let mut start = vec![0u32; self.records.len() + 1];
        // Every user in walk order: one recorded when `i` tensors had been
        // comes before tensor `i`.
        let all = || {
            let mut explicit = users.iter().peekable();
            let mut tensors = tensor_users.clone();
            let (mut i, mut tensors_done) = (0usize, false);
            std::iter::from_fn(move || {
                loop {
                    if let Some(&&(s, span, before)) = explicit.peek()
                        && (tensors_done || before as usize <= i)
                    {
                        explicit.next();
                        return Some((s, span));
                    }
                    if tensors_done {
                        return None;
                    }
                    match tensors.next() {
                        None => tensors_done = true,
                        Some(user) => {
                            i += 1;
                            if user.is_some() {
                                return user;
                            }
                        }
                    }
                }
            })
        };
        let mut total = 0usize;
        for (s, _) in all() {
            if let Some(n) = start.get_mut(s as usize + 1) {
                *n += 1;
                total += 1;
            }
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut next = start.clone();
        let mut spans = vec![Span { start: 0, len: 0 }; total];
        for (s, span) in all() {
            if let Some(at) = next.get_mut(s as usize) {
                spans[*at as usize] = span;
                *at += 1;
            }
        }
        self.user_start = start;
        self.user_spans = spans;
    }

    /// Give storage `index` its bytes in the file.
    pub(crate) fn locate(&mut self, index: usize, range: Range<u64>, compressed: bool) {
        let Some(&p) = self.records.get(index) else {
            return;
        };
        let nbytes = p.numel.checked_mul(p.dtype.size_in_bytes() as u64);
        if p.flags & PackedStorage::FULL == 0 && nbytes == Some(range.end - range.start) {
            let r = &mut self.records[index];
            r.start = range.start;
            r.flags |= PackedStorage::LOCATED;
            if compressed {
                r.flags |= PackedStorage::COMPRESSED;
            }
            return;
        }
        let full = self.make_full(index);
        let s = &mut self.full[full];
        s.byte_range = range;
        s.compressed = compressed;
    }

    /// Storage `index` read in place; `user_text` is the walk's text its
    /// users' spans point into.
    pub(crate) fn get<'c>(&'c self, index: usize, user_text: &'c str) -> Option<StorageRef<'c>> {
        let p = self.records.get(index)?;
        Some(StorageRef {
            s: self,
            p,
            index,
            user_text,
        })
    }

    fn unpack_fields(&self, p: &PackedStorage) -> Storage {
        let r = StorageRef {
            s: self,
            p,
            index: usize::MAX,
            user_text: "",
        };
        Storage {
            key: r.key().into(),
            record: r.record().map(str::to_owned),
            source: self.names.get(p.source.into()).clone(),
            storage_type: self.names.get(p.storage_type.into()).clone(),
            dtype: p.dtype,
            numel: p.numel,
            location: self.names.get(p.location.into()).clone(),
            byte_range: r.byte_range(),
            compressed: r.compressed(),
            tensors: Vec::new(),
        }
    }
}

/// The (record directory, key) storage `i` was declared with.
fn dir_key<'s>(
    records: &[PackedStorage],
    text: &'s str,
    full: &'s [Storage],
    i: usize,
) -> (Option<&'s str>, &'s str) {
    let p = &records[i];
    if p.flags & PackedStorage::FULL != 0 {
        let s = &full[p.text.start as usize];
        let dir = s
            .record
            .as_deref()
            .and_then(|r| r.strip_suffix(&*s.key)?.strip_suffix('/'));
        return (dir, &s.key);
    }
    let all = p.text.get(text);
    let key_at = usize::from(p.key_at);
    let dir = (p.flags & PackedStorage::RECORD != 0).then(|| &all[..key_at.saturating_sub(1)]);
    (dir, &all[key_at..])
}

/// A storage of an opened checkpoint read where it is kept
/// ([`Checkpoint::storage_refs`](crate::Checkpoint::storage_refs)): what a
/// [`Storage`] says, without a copy of its key, record name and user paths.
#[derive(Debug, Clone, Copy)]
pub struct StorageRef<'c> {
    s: &'c Storages,
    p: &'c PackedStorage,
    index: usize,
    user_text: &'c str,
}

impl<'c> StorageRef<'c> {
    fn full(&self) -> Option<&'c Storage> {
        (self.p.flags & PackedStorage::FULL != 0).then(|| &self.s.full[self.p.text.start as usize])
    }

    fn name(&self, i: u16) -> &'c Arc<str> {
        self.s.names.get(i)
    }

    /// Its index in [`Checkpoint::storages`](crate::Checkpoint::storages)
    /// (a [`Tensor::storage`](crate::Tensor::storage)).
    pub fn index(&self) -> usize {
        self.index
    }

    /// [`Storage::key`].
    pub fn key(&self) -> &'c str {
        match self.full() {
            Some(s) => &s.key,
            None => &self.p.text.get(&self.s.text)[usize::from(self.p.key_at)..],
        }
    }

    /// [`Storage::record`].
    pub fn record(&self) -> Option<&'c str> {
        match self.full() {
            Some(s) => s.record.as_deref(),
            None => {
                (self.p.flags & PackedStorage::RECORD != 0).then(|| self.p.text.get(&self.s.text))
            }
        }
    }

    /// [`Storage::source`].
    pub fn source(&self) -> &'c Arc<str> {
        match self.full() {
            Some(s) => &s.source,
            None => self.name(self.p.source.into()),
        }
    }

    /// [`Storage::storage_type`].
    pub fn storage_type(&self) -> &'c Arc<str> {
        match self.full() {
            Some(s) => &s.storage_type,
            None => self.name(self.p.storage_type.into()),
        }
    }

    /// [`Storage::dtype`].
    pub fn dtype(&self) -> DType {
        self.full().map_or(self.p.dtype, |s| s.dtype)
    }

    /// [`Storage::numel`].
    pub fn numel(&self) -> u64 {
        self.full().map_or(self.p.numel, |s| s.numel)
    }

    /// [`Storage::nbytes`].
    pub fn nbytes(&self) -> Option<u64> {
        self.numel()
            .checked_mul(self.dtype().size_in_bytes() as u64)
    }

    /// [`Storage::location`].
    pub fn location(&self) -> &'c Arc<str> {
        match self.full() {
            Some(s) => &s.location,
            None => self.name(self.p.location.into()),
        }
    }

    /// [`Storage::byte_range`].
    pub fn byte_range(&self) -> Range<u64> {
        match self.full() {
            Some(s) => s.byte_range.clone(),
            None if self.p.flags & PackedStorage::LOCATED != 0 => {
                // Located only when the range is exactly the declared size.
                let len = self.nbytes().unwrap_or(0);
                self.p.start..self.p.start.saturating_add(len)
            }
            None => 0..0,
        }
    }

    /// [`Storage::compressed`].
    pub fn compressed(&self) -> bool {
        match self.full() {
            Some(s) => s.compressed,
            None => self.p.flags & PackedStorage::COMPRESSED != 0,
        }
    }

    /// [`Storage::tensors`]: the paths of its users, in walk order.
    pub fn tensors(&self) -> impl Iterator<Item = &'c str> + 'c {
        let text = self.user_text;
        let rest: &'c [String] = self.full().map_or(&[], |s| &s.tensors);
        self.user_spans()
            .iter()
            .map(move |s| s.get(text))
            .chain(rest.iter().map(String::as_str))
    }

    /// The number of its users ([`Storage::tensors`]' length).
    pub fn tensor_count(&self) -> usize {
        self.user_spans().len() + self.full().map_or(0, |s| s.tensors.len())
    }

    /// Its first user's path.
    pub fn first_tensor(&self) -> Option<&'c str> {
        match self.user_spans().first() {
            Some(s) => Some(s.get(self.user_text)),
            None => self
                .full()
                .and_then(|s| s.tensors.first())
                .map(String::as_str),
        }
    }

    fn user_spans(&self) -> &'c [Span] {
        let s = self.s;
        let (Some(&a), Some(&b)) = (
            s.user_start.get(self.index),
            s.user_start.get(self.index.wrapping_add(1)),
        ) else {
            return &[];
        };
        s.user_spans.get(a as usize..b as usize).unwrap_or(&[])
    }

    /// The storage as an owned [`Storage`] (what
    /// [`Checkpoint::storages`](crate::Checkpoint::storages) holds).
    pub fn to_storage(&self) -> Storage {
        let mut s = match self.full() {
            Some(s) => {
                let mut s = s.clone();
                s.tensors.clear();
                s
            }
            None => self.s.unpack_fields(self.p),
        };
        s.tensors = Vec::with_capacity(self.tensor_count());
        s.tensors.extend(self.tensors().map(str::to_owned));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declare(s: &mut Storages, dir: Option<&str>, key: &str, location: &str) -> usize {
        let source: Arc<str> = "data.pkl".into();
        let hash = s.lookup(dir, key).unwrap_err();
        s.declare(
            &NewStorage {
                dir,
                key,
                source: &source,
                storage_type: "torch.FloatStorage",
                dtype: DType::Float32,
                numel: 3,
                location,
            },
            hash,
        )
    }

    fn expect(key: &str, record: Option<&str>, location: &str) -> Storage {
        Storage {
            key: key.into(),
            record: record.map(str::to_owned),
            source: "data.pkl".into(),
            storage_type: "torch.FloatStorage".into(),
            dtype: DType::Float32,
            numel: 3,
            location: location.into(),
            byte_range: 0..0,
            compressed: false,
            tensors: Vec::new(),
        }
    }

    #[test]
    fn packed_and_whole_storages_read_alike() {
        let mut s = Storages::default();
        let a = declare(&mut s, Some("data"), "0", "cpu");
        let b = declare(&mut s, Some("data"), "1", "cuda:0");
        let c = declare(&mut s, None, "94', 5", "cpu");
        assert_eq!(
            (
                s.find(Some("data"), "1"),
                s.find(None, "94', 5"),
                s.find(None, "0")
            ),
            (Some(b), Some(c), None)
        );
        // `a` is located at its size and stays packed; `b`'s record is
        // deflated (another length), so it becomes a whole Storage.
        s.locate(a, 64..76, false);
        s.locate(b, 128..133, true);
        assert_eq!(s.full.len(), 1);
        let text = "x.weightx.biasy.ty.u";
        let span = |start, len| Span { start, len };
        // Users recorded apart (after 0, 1, 1 and 3 tensors), merged in
        // walk order with the tensors that are users themselves: tensor 0
        // (x.weight of a), 1 (not a user), 2 (y.t of a), 3 (y.u of c).
        s.add_user(b, span(8, 6), 1);
        s.add_user(a, span(8, 6), 1);
        s.add_user(a, span(0, 8), 3);
        // A user past the text offsets comes after the spans.
        s.add_user_path(a, "z");
        let tensor_users = [
            Some((a as u32, span(0, 8))),
            None,
            Some((a as u32, span(14, 3))),
            Some((c as u32, span(17, 3))),
        ];
        s.finish(tensor_users.into_iter());
        let mut want = expect("0", Some("data/0"), "cpu");
        want.byte_range = 64..76;
        want.tensors = ["x.weight", "x.bias", "y.t", "x.weight", "z"]
            .map(Into::into)
            .to_vec();
        assert_eq!(s.get(a, text).unwrap().to_storage(), want);
        let mut want = expect("1", Some("data/1"), "cuda:0");
        want.byte_range = 128..133;
        want.compressed = true;
        want.tensors = vec!["x.bias".into()];
        let r = s.get(b, text).unwrap();
        assert_eq!(r.to_storage(), want);
        assert_eq!((r.first_tensor(), r.tensor_count()), (Some("x.bias"), 1));
        let mut want = expect("94', 5", None, "cpu");
        want.tensors = vec!["y.u".into()];
        assert_eq!(s.get(c, text).unwrap().to_storage(), want);
        // Made whole, both are still found by their directory and key.
        assert_eq!(
            (s.find(Some("data"), "0"), s.find(Some("data"), "1")),
            (Some(a), Some(b))
        );
    }

    #[test]
    fn records_that_are_not_dir_and_key_are_kept_whole() {
        let mut s = Storages::default();
        let mut w = expect("w", Some("data/weights/w"), "cpu");
        w.storage_type = "raw".into();
        let packed = s.push(w.clone());
        let mut odd = w.clone();
        odd.record = Some("elsewhere".into());
        let whole = s.push(odd.clone());
        assert_eq!(s.full.len(), 1);
        s.finish(std::iter::empty());
        assert_eq!(s.get(packed, "").unwrap().to_storage(), w);
        assert_eq!(s.get(whole, "").unwrap().to_storage(), odd);
        assert_eq!(s.get(packed, "").unwrap().record(), Some("data/weights/w"));
    }

    #[test]
    fn more_names_than_the_table_holds_are_kept_whole() {
        let mut s = Storages::default();
        // A packed storage holds 256 distinct names: the rest are kept whole.
        let n = 300;
        for i in 0..n {
            declare(&mut s, Some("data"), &i.to_string(), &format!("cuda:{i}"));
        }
        s.finish(std::iter::empty());
        assert!(!s.full.is_empty() && s.full.len() < n, "{}", s.full.len());
        assert!(
            s.records[..200]
                .iter()
                .all(|p| p.flags & PackedStorage::FULL == 0)
        );
        for i in [0, n / 2, n - 1] {
            let key = i.to_string();
            assert_eq!(s.find(Some("data"), &key), Some(i));
            let r = s.get(i, "").unwrap();
            assert_eq!(
                (r.key(), &**r.location()),
                (key.as_str(), format!("cuda:{i}").as_str())
            );
        }
    }
}
