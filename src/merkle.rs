//! RFC 6962 / RFC 9162 Merkle tree math, pure and storage-agnostic: hashes, proofs and the append
//! algorithm ([`frontier`] then [`append`]: which stored nodes an append reads, and which it writes).
//!
//! A leaf module: no I/O, and it uses no other module of the crate. The register proves with it; the
//! store persists the nodes it computes.
//!
//! Proofs are computed in two steps, as a store wants them: first the list of subtree ranges a proof needs
//! ([`inclusion_ranges`], [`consistency_ranges`]), at most O(log n) of them, then one read of those
//! ranges' hashes. A range is `[start, end)` over leaf indexes; every range this module asks for is either
//! a perfect subtree (`end - start` a power of two, `start` a multiple of it) or the right edge of the tree,
//! which [`perfect_pieces`] splits into perfect subtrees a store can hold.

use sha2::{Digest as _, Sha256};

/// A node or leaf hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (n ≥ 2): where RFC 6962 splits a tree of n leaves.
pub fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The subtree ranges whose hashes make the inclusion proof of leaf `index` in a tree of `size`, in
/// RFC 9162 order (bottom-up).
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    assert!(index < size, "leaf {index} is not in a tree of {size}");
    let mut ranges = Vec::new();
    let (mut start, mut end) = (0, size);
    while end - start > 1 {
        let k = split(end - start);
        if index - start < k {
            ranges.push((start + k, end));
            end = start + k;
        } else {
            ranges.push((start, start + k));
            start += k;
        }
    }
    ranges.reverse();
    ranges
}

/// The subtree ranges whose hashes make the consistency proof from tree size `first` to `second`, in
/// RFC 9162 order. Empty when `first` is 0 or equals `second`.
pub fn consistency_ranges(first: u64, second: u64) -> Vec<(u64, u64)> {
    assert!(first <= second, "first tree {first} is larger than second {second}");
    let mut ranges = Vec::new();
    if first == 0 || first == second {
        return ranges;
    }
    subproof(first, 0, second, true, &mut ranges);
    ranges
}

/// RFC 6962 SUBPROOF(m, D[start:end], b), collecting ranges instead of hashes.
fn subproof(m: u64, start: u64, end: u64, complete: bool, out: &mut Vec<(u64, u64)>) {
    let n = end - start;
    if m == n {
        if !complete {
            out.push((start, end));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, start + k, complete, out);
        out.push((start + k, end));
    } else {
        subproof(m - k, start + k, end, false, out);
        out.push((start, start + k));
    }
}

/// Splits `[start, end)` into perfect subtrees, left to right; their hashes fold right-to-left into the
/// range's hash with [`fold_pieces`].
pub fn perfect_pieces(start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut pieces = Vec::new();
    let mut at = start;
    while at < end {
        let mut width = if at == 0 { 1 << 62 } else { 1u64 << at.trailing_zeros() };
        while at + width > end {
            width >>= 1;
        }
        pieces.push((at, at + width));
        at += width;
    }
    pieces
}

/// The hash of a range from the hashes of its [`perfect_pieces`]: RFC 6962 joins the right edge as
/// `node(left, node(…, last))`, which is a right-to-left fold.
pub fn fold_pieces(hashes: &[Hash]) -> Hash {
    let (last, rest) = hashes.split_last().expect("a range has at least one piece");
    rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc))
}

/// A stored node: the perfect subtree at `level` (2^level leaves) number `index` from the left.
pub type NodeId = (u32, u64);

/// The stored node that holds a perfect range `[start, end)`.
pub fn node_of(start: u64, end: u64) -> NodeId {
    let width = end - start;
    debug_assert!(width.is_power_of_two() && start % width == 0, "[{start}, {end}) is not a perfect subtree");
    (width.trailing_zeros(), start >> width.trailing_zeros())
}

/// The nodes to store when `leaves` are appended to a tree of `size` leaves whose right edge is
/// `frontier` (the hashes of [`perfect_pieces`]`(0, size)`, left to right): every new leaf, and every
/// perfect subtree the new leaves complete. Appending is a binary counter over the frontier.
pub fn extend(size: u64, frontier: &[Hash], leaves: &[Hash]) -> Vec<(NodeId, Hash)> {
    let mut stack: Vec<(NodeId, Hash)> = self::frontier(size).into_iter().zip(frontier.iter().copied()).collect();
    let mut new_nodes = Vec::new();
    for (offset, leaf) in leaves.iter().enumerate() {
        let mut top = ((0, size + offset as u64), *leaf);
        new_nodes.push(top);
        while let Some(&((level, index), left)) = stack.last() {
            let ((top_level, top_index), right) = top;
            if level != top_level || index + 1 != top_index || index % 2 != 0 {
                break;
            }
            stack.pop();
            top = ((level + 1, index / 2), node_hash(&left, &right));
            new_nodes.push(top);
        }
        stack.push(top);
    }
    new_nodes
}

/// The stored nodes an append to a tree of `size` leaves reads first: its right edge, the nodes of
/// [`perfect_pieces`]`(0, size)`, left to right.
pub fn frontier(size: u64) -> Vec<NodeId> {
    perfect_pieces(0, size).into_iter().map(|(start, end)| node_of(start, end)).collect()
}

/// What appending entries to a tree writes: each entry's leaf hash (in the entries' order) and every
/// node to store, as [`extend`] gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    pub leaf_hashes: Vec<Hash>,
    pub nodes: Vec<(NodeId, Hash)>,
}

/// Appends `entries` to a tree of `size` leaves whose [`frontier`] nodes hold `frontier_hashes`.
pub fn append(size: u64, frontier_hashes: &[Hash], entries: &[&[u8]]) -> Growth {
    let leaf_hashes: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
    let nodes = extend(size, frontier_hashes, &leaf_hashes);
    Growth { leaf_hashes, nodes }
}

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} is not inside a tree of size {size}")]
    OutOfRange { index: u64, size: u64 },
    #[error("the proof has {got} hashes; a valid one has {expected}")]
    WrongLength { got: usize, expected: usize },
    #[error("the proof leads to another root hash")]
    RootMismatch,
    #[error("tree size {first} is larger than {second}")]
    Shrunk { first: u64, second: u64 },
}

/// RFC 9162 §2.1.3.2: checks that `leaf` is leaf `index` of the tree of `size` whose root is `root`.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let expected = inclusion_ranges(index, size).len();
    if proof.len() != expected {
        return Err(ProofError::WrongLength { got: proof.len(), expected });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if &r == root { Ok(()) } else { Err(ProofError::RootMismatch) }
}

/// RFC 9162 §2.1.4.2: checks that the tree of size `first` with root `first_root` is a prefix of the tree
/// of size `second` with root `second_root`.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::Shrunk { first, second });
    }
    if first == second {
        return match (proof.is_empty(), first_root == second_root) {
            (true, true) => Ok(()),
            (false, _) => Err(ProofError::WrongLength { got: proof.len(), expected: 0 }),
            (true, false) => Err(ProofError::RootMismatch),
        };
    }
    if first == 0 {
        return if proof.is_empty() { Ok(()) } else { Err(ProofError::WrongLength { got: proof.len(), expected: 0 }) };
    }
    let expected = consistency_ranges(first, second).len();
    if proof.len() != expected {
        return Err(ProofError::WrongLength { got: proof.len(), expected });
    }
    let mut proof = proof.to_vec();
    if first.is_power_of_two() {
        proof.insert(0, *first_root);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (proof[0], proof[0]);
    for c in &proof[1..] {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && &fr == first_root && &sr == second_root { Ok(()) } else { Err(ProofError::RootMismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent, naive RFC 6962 implementation: everything recomputed from the leaves.
    mod naive {
        use super::super::{Hash, empty_root, node_hash, split};

        pub(super) fn root(leaves: &[Hash]) -> Hash {
            match leaves.len() {
                0 => empty_root(),
                1 => leaves[0],
                n => {
                    let k = split(n as u64) as usize;
                    node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
                }
            }
        }

        pub(super) fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
            let n = leaves.len();
            if n <= 1 {
                return Vec::new();
            }
            let k = split(n as u64) as usize;
            if m < k {
                let mut p = path(m, &leaves[..k]);
                p.push(root(&leaves[k..]));
                p
            } else {
                let mut p = path(m - k, &leaves[k..]);
                p.push(root(&leaves[..k]));
                p
            }
        }

        pub(super) fn consistency(m: usize, leaves: &[Hash]) -> Vec<Hash> {
            fn sub(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
                let n = d.len();
                if m == n {
                    return if b { Vec::new() } else { vec![root(d)] };
                }
                let k = split(n as u64) as usize;
                if m <= k {
                    let mut p = sub(m, &d[..k], b);
                    p.push(root(&d[k..]));
                    p
                } else {
                    let mut p = sub(m - k, &d[k..], false);
                    p.push(root(&d[..k]));
                    p
                }
            }
            if m == 0 || m == leaves.len() { Vec::new() } else { sub(m, leaves, true) }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect()
    }

    fn range_hash(leaves: &[Hash], (start, end): (u64, u64)) -> Hash {
        let pieces: Vec<Hash> =
            perfect_pieces(start, end).iter().map(|&(s, e)| naive::root(&leaves[s as usize..e as usize])).collect();
        fold_pieces(&pieces)
    }

    fn hex(h: &Hash) -> String {
        crate::formats::digest::hex_lower(h)
    }

    /// The inputs of the Certificate Transparency reference test tree (certificate-transparency
    /// cpp/merkletree/merkle_tree_test.cc, kInputs): eight leaves.
    const CT_INPUTS: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];

    fn ct_leaves() -> Vec<Hash> {
        CT_INPUTS.iter().map(|i| leaf_hash(i)).collect()
    }

    /// Roots of the Certificate Transparency reference test tree (kSHA256Roots), one per tree size.
    #[test]
    fn matches_the_certificate_transparency_reference_roots() {
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let hashed = ct_leaves();
        for (n, expected) in roots.iter().enumerate() {
            assert_eq!(hex(&naive::root(&hashed[..=n])), *expected, "root of {} leaves", n + 1);
            assert_eq!(hex(&range_hash(&hashed, (0, n as u64 + 1))), *expected);
        }
        assert_eq!(hex(&empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    /// Asserts `proof` is the published one (hex hashes separated by spaces), that it `holds`, and that it
    /// no longer does with any one hash changed.
    fn assert_reference_proof(proof: &[Hash], published: &str, holds: impl Fn(&[Hash]) -> bool, what: &str) {
        assert_eq!(
            proof.iter().map(hex).collect::<Vec<_>>(),
            published.split_whitespace().collect::<Vec<_>>(),
            "{what}"
        );
        assert!(holds(proof), "{what}");
        for changed in 0..proof.len() {
            let mut wrong = proof.to_vec();
            wrong[changed] = empty_root();
            assert!(!holds(&wrong), "{what} with hash {changed} changed");
        }
    }

    /// The inclusion proofs of the reference tree (kSHA256Paths, generated there from the RFC 6962 reference
    /// algorithm; its leaf numbers are 1-based, the indexes here 0-based).
    #[test]
    fn matches_the_certificate_transparency_reference_inclusion_proofs() {
        let vectors = [
            (0, 1, ""),
            (
                0,
                8,
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 \
                    5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e \
                    6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ),
            (
                5,
                8,
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b \
                    ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 \
                    d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ),
            (2, 3, "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
            (
                1,
                5,
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d \
                    5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e \
                    bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ),
        ];
        let hashed = ct_leaves();
        for (index, size, published) in vectors {
            let proof: Vec<Hash> = inclusion_ranges(index, size).into_iter().map(|r| range_hash(&hashed, r)).collect();
            let root = naive::root(&hashed[..size as usize]);
            let holds = |p: &[Hash]| verify_inclusion(&hashed[index as usize], index, size, p, &root).is_ok();
            assert_reference_proof(&proof, published, holds, &format!("leaf {index} of {size}"));
        }
    }

    /// The consistency proofs of the reference tree (kSHA256Proofs).
    #[test]
    fn matches_the_certificate_transparency_reference_consistency_proofs() {
        let vectors = [
            (1, 1, ""),
            (
                1,
                8,
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 \
                    5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e \
                    6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ),
            (
                6,
                8,
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a \
                    ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 \
                    d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ),
            (
                2,
                5,
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e \
                    bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ),
        ];
        let hashed = ct_leaves();
        for (first, second, published) in vectors {
            let proof: Vec<Hash> =
                consistency_ranges(first, second).into_iter().map(|r| range_hash(&hashed, r)).collect();
            let (old, new) = (naive::root(&hashed[..first as usize]), naive::root(&hashed[..second as usize]));
            let holds = |p: &[Hash]| verify_consistency(first, second, &old, &new, p).is_ok();
            assert_reference_proof(&proof, published, holds, &format!("{first} -> {second}"));
        }
    }

    #[test]
    fn inclusion_proofs_match_the_naive_tree_and_verify_for_every_leaf_up_to_70() {
        let all = leaves(70);
        for size in 1..=70u64 {
            let tree = &all[..size as usize];
            let root = naive::root(tree);
            for index in 0..size {
                let proof: Vec<Hash> = inclusion_ranges(index, size).into_iter().map(|r| range_hash(&all, r)).collect();
                assert_eq!(proof, naive::path(index as usize, tree), "size {size} index {index}");
                verify_inclusion(&tree[index as usize], index, size, &proof, &root).unwrap();
                let other = (index + 1) % size;
                if other != index {
                    assert!(verify_inclusion(&tree[other as usize], index, size, &proof, &root).is_err());
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_match_the_naive_tree_and_verify_for_every_pair_up_to_40() {
        let all = leaves(40);
        for second in 1..=40u64 {
            let second_root = naive::root(&all[..second as usize]);
            for first in 0..=second {
                let first_root = naive::root(&all[..first as usize]);
                let proof: Vec<Hash> =
                    consistency_ranges(first, second).into_iter().map(|r| range_hash(&all, r)).collect();
                assert_eq!(proof, naive::consistency(first as usize, &all[..second as usize]), "{first}->{second}");
                verify_consistency(first, second, &first_root, &second_root, &proof).unwrap();
                if first > 0 && first < second {
                    let mut forged = all[..second as usize].to_vec();
                    forged[first as usize - 1] = leaf_hash(b"rewritten history");
                    let forged_root = naive::root(&forged);
                    assert!(verify_consistency(first, second, &first_root, &forged_root, &proof).is_err());
                }
            }
        }
    }

    #[test]
    fn extending_stores_exactly_the_perfect_subtrees_and_keeps_the_naive_root() {
        use std::collections::HashMap;
        let all = leaves(100);
        let mut stored: HashMap<NodeId, Hash> = HashMap::new();
        let mut size = 0u64;
        for batch in [1usize, 2, 3, 1, 7, 16, 5, 30, 35] {
            let frontier: Vec<Hash> = perfect_pieces(0, size).iter().map(|&(s, e)| stored[&node_of(s, e)]).collect();
            let new_leaves = &all[size as usize..size as usize + batch];
            for (id, hash) in extend(size, &frontier, new_leaves) {
                assert!(stored.insert(id, hash).is_none(), "node {id:?} written twice");
            }
            size += batch as u64;
            let pieces: Vec<Hash> = perfect_pieces(0, size).iter().map(|&(s, e)| stored[&node_of(s, e)]).collect();
            assert_eq!(fold_pieces(&pieces), naive::root(&all[..size as usize]), "root after {size} leaves");
            for (&(level, index), hash) in &stored {
                let (s, e) = (index << level, (index + 1) << level);
                assert_eq!(*hash, naive::root(&all[s as usize..e as usize]), "node {level}/{index}");
            }
        }
        assert_eq!(stored.len(), 2 * 100 - 100usize.count_ones() as usize);
    }

    #[test]
    fn append_reads_the_frontier_and_writes_leaf_hashes_and_completed_nodes() {
        let entries: Vec<&[u8]> = vec![b"a", b"b", b"c", b"d", b"e"];
        let first = append(0, &[], &entries[..3]);
        assert_eq!(first.leaf_hashes, entries[..3].iter().map(|e| leaf_hash(e)).collect::<Vec<_>>());
        assert_eq!(frontier(3), [(1, 0), (0, 2)]);
        let stored: std::collections::HashMap<NodeId, Hash> = first.nodes.iter().copied().collect();
        let frontier_hashes: Vec<Hash> = frontier(3).iter().map(|id| stored[id]).collect();
        let second = append(3, &frontier_hashes, &entries[3..]);
        assert_eq!(second.nodes, extend(3, &frontier_hashes, &second.leaf_hashes));
        let all: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        assert!(second.nodes.contains(&((2, 0), naive::root(&all[..4]))));
    }

    #[test]
    fn perfect_pieces_cover_a_range_with_aligned_powers_of_two() {
        assert_eq!(perfect_pieces(0, 7), [(0, 4), (4, 6), (6, 7)]);
        assert_eq!(perfect_pieces(8, 13), [(8, 12), (12, 13)]);
        assert_eq!(perfect_pieces(5, 6), [(5, 6)]);
        for (s, e) in perfect_pieces(3, 1000) {
            let w = e - s;
            assert!(w.is_power_of_two() && s % w == 0, "({s},{e})");
        }
    }
}
