//! Fuzz target: the pickle machine and the opcode reader on arbitrary bytes.
//! Neither may panic, hang, or allocate beyond its limits; when the machine
//! accepts a pickle, the writer must either refuse it or write one that loads
//! back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netport_pickle::machine::{Limits, Machine};
use netport_pickle::ops::Ops;

fuzz_target!(|data: &[u8]| {
    for op in Ops::new(data) {
        if op.is_err() {
            break;
        }
    }
    // Small limits keep each run fast; the limits themselves are what is tested.
    let limits = Limits {
        max_work: 1 << 20,
        max_nodes: 1 << 16,
        ..Limits::default()
    };
    if let Ok(pickle) = Machine::new(limits).load(data, 0) {
        if let Ok(bytes) = netport_pickle::writer::write(&pickle.arena, pickle.root) {
            Machine::new(Limits::default())
                .load(&bytes, 0)
                .expect("the writer's output loads back");
        }
    }
});
