//! Slice strings (`?slice_=`, `cat2cli show`): parsed, then resolved against shapes; every
//! selection that resolves lies inside its shape.
#![no_main]

use cat2_array::{Selection, SliceSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = SliceSpec::parse(s) else {
        return;
    };
    let shapes: [&[u64]; 5] = [
        &[],
        &[10],
        &[3, 0, 7],
        &[u64::MAX / 2, 5],
        &[1, 1, 1, 1, 1, 1, 1, 1],
    ];
    for shape in shapes {
        if let Ok(sel) = Selection::new(&spec, shape) {
            let _ = (sel.nitems(), sel.shape(), sel.extent());
            for (r, d) in sel.ranges().iter().zip(shape) {
                assert!(r.start <= r.end && r.end <= *d, "{s:?} on {shape:?}: {r:?}");
            }
        }
    }
    let _ = Selection::new_items(&spec, 1000);
});
