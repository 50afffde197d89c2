//! Fuzz target: the pickle machine and the opcode reader on arbitrary bytes.
//! Neither may panic, hang, or allocate beyond its limits; when the machine
//! accepts a pickle, the writer must either refuse it or write one that loads
//! back; taking every call as it is made gives the same result.

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
    // Taking every call (freeing its arguments) changes no result, end or
    // work, and never panics.
    struct TakeAll(u32);
    impl netport_pickle::Taker for TakeAll {
        fn take(
            &mut self,
            _arena: &netport_pickle::Arena,
            _callable: netport_pickle::ValueId,
            _args: netport_pickle::ValueId,
        ) -> Option<u32> {
            self.0 += 1;
            Some(self.0)
        }
    }
    let plain = Machine::new(limits.clone()).load(data, 0);
    let taken = Machine::new(limits.clone()).load_with(data, 0, &mut TakeAll(0));
    match (&plain, &taken) {
        (Ok(p), Ok(q)) => assert_eq!((p.end, p.work), (q.end, q.work)),
        (Err(e), Err(f)) => assert_eq!(e, f),
        _ => panic!("load and load_with disagree"),
    }
    if let Ok(pickle) = Machine::new(limits).load(data, 0) {
        if let Ok(bytes) = netport_pickle::writer::write(&pickle.arena, pickle.root) {
            Machine::new(Limits::default())
                .load(&bytes, 0)
                .expect("the writer's output loads back");
        }
    }
});
