//! Print what netport-torch reads from a file (development aid).
fn main() {
    for path in std::env::args().skip(1) {
        match netport_torch::Checkpoint::open(&path) {
            Err(e) => println!("{path}: ERROR {e}"),
            Ok(c) => {
                println!("{path}: {} {:?}", c.format(), c.info().archive_name);
                for t in c.tensors() {
                    println!(
                        "  T {} {} {:?} {:?} off={} dev={} key={:?} {:?} rg={} conj={} neg={}",
                        t.path,
                        t.dtype,
                        t.shape,
                        t.strides,
                        t.storage_offset,
                        t.device,
                        t.storage_key,
                        t.kind,
                        t.requires_grad,
                        t.conj,
                        t.neg
                    );
                }
                for v in c.values() {
                    println!("  V {} = {} [{:?}]", v.path, v.repr, v.leaf);
                }
                for p in c.pickles() {
                    println!(
                        "  P {} {:?} proto={:?} compressed={}",
                        p.name, p.byte_range, p.protocol, p.compressed
                    );
                }
            }
        }
    }
}
