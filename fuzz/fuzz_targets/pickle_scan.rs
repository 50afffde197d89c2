//! Fuzz target: the per-pickle safety scan on arbitrary bytes. It must never
//! panic, and every global the machine resolves must be among the scan's
//! findings (a scanner that misses what the unpickler would import is a
//! bypass).

#![no_main]

use libfuzzer_sys::fuzz_target;
use netport_pickle::machine::{Limits, Machine};
use netport_pickle::value::Value;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let scan = netport_pickle::scan(data, 0, &limits);
    if let Ok(pickle) = Machine::new(limits).load(data, 0) {
        for value in pickle.arena.values() {
            if let Value::Global { module, name } = value {
                assert!(
                    scan.globals.iter().any(|g| g
                        .resolved
                        .as_ref()
                        .is_some_and(
                            |(m, n)| m.as_str() == module.as_str() && n.as_str() == name.as_str()
                        )
                        || g.full_name().ends_with(name.as_str())),
                    "scan missed {module}.{name}"
                );
            }
        }
    }
});
