//! Property tests: slice parsing, chunk intersection and chunk assembly against a naive
//! element-by-element reference, for random shapes (0-d, empty dimensions, up to 8-d), chunks
//! and blocks that do not divide the shape, and item sizes of every dtype.

use std::collections::BTreeSet;

use cat2_array::{ChunkLayout, Selection, SliceItem, SliceSpec};
use proptest::prelude::*;

/// Item sizes of bool/int8 (1), int16 (2), |S3 (3), int32/float32 (4), <U2 (8), complex128 (16),
/// <U6 (24) and a 35-byte structured dtype.
const ITEMSIZES: &[usize] = &[1, 2, 3, 4, 8, 16, 24, 35];

fn layout_strategy() -> impl Strategy<Value = ChunkLayout> {
    (0usize..=8)
        .prop_flat_map(|nd| {
            let max = if nd > 4 { 3u64 } else { 7 };
            (
                proptest::collection::vec(0..=max, nd),
                proptest::sample::select(ITEMSIZES),
            )
        })
        .prop_flat_map(|(shape, isz)| {
            let chunks: Vec<BoxedStrategy<u64>> = shape
                .iter()
                .map(|&s| {
                    if s == 0 {
                        Just(0).boxed()
                    } else {
                        (1..=s + 1).boxed()
                    }
                })
                .collect();
            (Just(shape), chunks, Just(isz))
        })
        .prop_flat_map(|(shape, chunks, isz)| {
            let blocks: Vec<BoxedStrategy<u64>> = chunks
                .iter()
                .map(|&c| {
                    if c == 0 {
                        Just(0).boxed()
                    } else {
                        (1..=c).boxed()
                    }
                })
                .collect();
            (Just(shape), Just(chunks), blocks, Just(isz))
        })
        .prop_map(|(s, c, b, isz)| ChunkLayout::new(s, c, b, isz).expect("valid by construction"))
}

fn item_strategy(len: u64) -> BoxedStrategy<SliceItem> {
    let l = len as i64;
    let bound = proptest::option::of(-l - 2..=l + 2);
    let range = (bound.clone(), bound).prop_map(|(start, stop)| SliceItem::Range { start, stop });
    if len == 0 {
        // An empty dimension has no valid integer index.
        return range.boxed();
    }
    prop_oneof![(-l..l).prop_map(SliceItem::Index), range].boxed()
}

fn spec_strategy(shape: Vec<u64>) -> impl Strategy<Value = SliceSpec> {
    (0..=shape.len())
        .prop_flat_map(move |n| {
            shape[..n]
                .iter()
                .map(|&l| item_strategy(l))
                .collect::<Vec<_>>()
        })
        .prop_map(SliceSpec::new)
}

/// The bytes of item `k`: distinct for every item of an array of fewer than 2^24 items.
fn item_bytes(k: u64, isz: usize) -> Vec<u8> {
    (0..isz)
        .map(|i| (k.rotate_left(i as u32 * 8) as u8) ^ (i as u8).wrapping_mul(31))
        .collect()
}

fn strides(shape: &[u64]) -> Vec<u64> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// All multi-indices of `shape` in C order.
fn indices(shape: &[u64]) -> Vec<Vec<u64>> {
    let n: u64 = shape.iter().product();
    let st = strides(shape);
    (0..n)
        .map(|k| st.iter().zip(shape).map(|(s, l)| (k / s) % l).collect())
        .collect()
}

/// Naive packing: for each element, where it lands in which chunk (block-major, padded).
fn naive_chunks(l: &ChunkLayout) -> Vec<Vec<u8>> {
    let isz = l.itemsize();
    let grid = l.grid();
    let bgrid: Vec<u64> = l
        .chunks()
        .iter()
        .zip(l.blocks())
        .map(|(c, b)| if *b == 0 { 0 } else { c.div_ceil(*b) })
        .collect();
    let block_items: u64 = l.blocks().iter().product();
    let mut chunks = vec![vec![0u8; l.chunk_nitems() as usize * isz]; l.nchunks() as usize];
    let st = strides(l.shape());
    for idx in indices(l.shape()) {
        let k: u64 = idx.iter().zip(&st).map(|(i, s)| i * s).sum();
        let (mut c, mut b, mut o) = (0u64, 0u64, 0u64);
        for d in 0..idx.len() {
            let local = idx[d] % l.chunks()[d];
            c = c * grid[d] + idx[d] / l.chunks()[d];
            b = b * bgrid[d] + local / l.blocks()[d];
            o = o * l.blocks()[d] + local % l.blocks()[d];
        }
        let at = ((b * block_items + o) as usize) * isz;
        chunks[c as usize][at..at + isz].copy_from_slice(&item_bytes(k, isz));
    }
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn assembly_matches_naive_reference(
        (l, spec) in layout_strategy().prop_flat_map(|l| { let s = l.shape().to_vec(); (Just(l), spec_strategy(s)) })
    ) {
        let isz = l.itemsize();
        let sel = Selection::new(&spec, l.shape()).expect("indices generated in range");
        // Expected: element by element.
        let st = strides(l.shape());
        let extent = sel.extent();
        let mut expected = Vec::new();
        let mut expected_chunks = BTreeSet::new();
        for rel in indices(&extent) {
            let idx: Vec<u64> = rel.iter().zip(sel.ranges()).map(|(i, r)| i + r.start).collect();
            let k: u64 = idx.iter().zip(&st).map(|(i, s)| i * s).sum();
            expected.extend(item_bytes(k, isz));
            let c = idx.iter().zip(l.chunks()).zip(l.grid()).fold(0, |acc, ((i, c), g)| acc * g + i / c);
            expected_chunks.insert(c);
        }
        let touched = l.chunks_touching(&sel);
        prop_assert_eq!(touched.iter().copied().collect::<BTreeSet<_>>(), expected_chunks);
        prop_assert!(touched.windows(2).all(|w| w[0] < w[1]));

        let chunks = naive_chunks(&l);
        let mut out = vec![0u8; expected.len()];
        for &c in &touched {
            l.copy_from_chunk(c, &chunks[c as usize], &sel, &mut out).unwrap();
        }
        prop_assert_eq!(&out, &expected);
        // Block by block: only the blocks a selection needs, each asked for once.
        let bb = l.block_bytes().max(1);
        let mut out2 = vec![0u8; expected.len()];
        for &c in &touched {
            let mut asked = std::collections::HashSet::new();
            l.copy_from_blocks(c, &sel, &mut out2, |b| -> Result<Vec<u8>, cat2_array::LayoutError> {
                assert!(asked.insert(b), "block {b} asked twice");
                let chunk = &chunks[c as usize];
                let start = (b as usize * bb).min(chunk.len());
                Ok(chunk[start..(start + bb).min(chunk.len())].to_vec())
            })
            .unwrap();
        }
        prop_assert_eq!(out2, expected);
        let shape = sel.shape();
        prop_assert_eq!(shape.iter().product::<u64>(), sel.nitems());
    }

    #[test]
    fn packing_matches_naive_reference(l in layout_strategy()) {
        let isz = l.itemsize();
        let n: u64 = l.shape().iter().product();
        let array: Vec<u8> = (0..n).flat_map(|k| item_bytes(k, isz)).collect();
        let expected = naive_chunks(&l);
        for c in 0..l.nchunks() {
            let mut chunk = vec![0u8; l.chunk_nitems() as usize * isz];
            l.copy_to_chunk(c, &array, &mut chunk).unwrap();
            prop_assert_eq!(&chunk, &expected[c as usize]);
        }
    }

    #[test]
    fn slice_strings_round_trip(spec in proptest::collection::vec(item_strategy(50), 0..8).prop_map(SliceSpec::new)) {
        prop_assert_eq!(&SliceSpec::parse(&spec.to_string()).unwrap(), &spec);
        // Extra whitespace anywhere is tolerated.
        let spaced = spec.to_string().replace(':', " : ").replace(',', " , ");
        prop_assert_eq!(SliceSpec::parse(&spaced).unwrap(), spec);
    }

    #[test]
    fn parsing_never_panics(s in "[-0-9:, a]{0,24}") {
        if let Ok(spec) = SliceSpec::parse(&s) {
            let _ = Selection::new(&spec, &[5, 0, 7]);
            let _ = Selection::new_items(&spec, 9);
        }
    }

    #[test]
    fn out_of_range_indices_are_errors(len in 0u64..20, i in -40i64..40) {
        let spec = SliceSpec::new(vec![SliceItem::Index(i)]);
        let ok = (i >= 0 && (i as u64) < len) || (i < 0 && i.unsigned_abs() <= len);
        prop_assert_eq!(Selection::new(&spec, &[len]).is_ok(), ok);
    }
}
