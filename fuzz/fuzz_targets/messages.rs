//! Every msgpack message a service takes from the bus: decoding never panics, and what
//! decodes encodes back to itself.
#![no_main]

use cat2_proto::msg::*;
use cat2_proto::{decode, encode};
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(what: &'static str, data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(m) = decode::<T>(what, data) {
        let again: T = decode(what, &encode(&m)).expect("what decoded encodes back");
        assert_eq!(again, m);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<Register>("register", data);
    round_trip::<Registered>("registered", data);
    round_trip::<Roots>("roots", data);
    round_trip::<RootsPage>("roots page", data);
    round_trip::<RootEvent>("root event", data);
    round_trip::<List>("list", data);
    round_trip::<InfoRequest>("info request", data);
    round_trip::<Info>("info", data);
    round_trip::<ChunksRequest>("chunks", data);
    round_trip::<BlocksRequest>("blocks", data);
    round_trip::<Change>("change", data);
    round_trip::<RootState>("state", data);
    if let Ok(d) = decode::<Digests>("digests", data) {
        // Sizes from the bus never overflow.
        let _ = (
            d.fits(u64::MAX, u64::MAX),
            d.chunk(u64::MAX),
            d.block(u64::MAX, 1, 2),
        );
    }
});
