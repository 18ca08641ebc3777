//! Root names and dataset paths (REST paths, every NATS message that names one): what is
//! accepted can never leave its root or become a NATS wildcard.
#![no_main]

use cat2_proto::{DatasetPath, RootName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = RootName::new(s) {
        let r = r.as_str();
        assert!(
            !r.is_empty() && !r.contains(['.', '*', '>', '/', '\\']),
            "{r:?}"
        );
        assert!(
            !r.chars().any(|c| c.is_whitespace() || c.is_control()),
            "{r:?}"
        );
    }
    if let Ok(p) = DatasetPath::new(s) {
        let p = p.as_str();
        assert!(!p.starts_with('/') && !p.contains('\\'), "{p:?}");
        assert!(
            p.split('/').all(|c| !c.is_empty() && c != "." && c != ".."),
            "{p:?}"
        );
    }
});
