//! C2SP tlog-tiles paths and entry bundles (docs/FORMATS.md §22): `tile/<L>/<N>[.p/<W>]` and
//! `tile/entries/<N>[.p/<W>]`, where `<N>` is written in zero-padded groups of three digits, every group
//! but the last prefixed with `x` (1234067 is `x001/x234/067`), `<L>` is 0 to 63 and `<W>` 1 to 255, all
//! without extra leading zeroes. An entry bundle is each entry prefixed with its length as a big-endian u16.
//!
//! Owns: these paths and bytes, pure. Must not touch: which tiles exist (the service decides from the tree
//! size), HTTP.

use super::FormatError;

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// The largest entry an entry bundle can carry (its length is a u16).
pub const MAX_BUNDLED_ENTRY: usize = u16::MAX as usize;

/// What a tile path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileKind {
    /// Hashes of level `L`: Merkle tree level `8 * L`.
    Hashes { level: u8 },
    /// Entries (the data behind level 0).
    Entries,
}

/// A parsed tile path (what follows `tile/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    pub kind: TileKind,
    /// The tile's index within its level.
    pub index: u64,
    /// `Some(w)` for a partial tile of `w` (1 to 255) hashes or entries.
    pub width: Option<u8>,
}

fn malformed(reason: impl Into<String>) -> FormatError {
    FormatError::malformed("tile path", reason)
}

/// A decimal with no leading zeroes (`0` alone for zero).
fn canonical_decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

impl TilePath {
    /// Reads the part after `tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`.
    pub fn parse(path: &str) -> Result<Self, FormatError> {
        let (head, rest) = path.split_once('/').ok_or_else(|| malformed("no index"))?;
        let kind = if head == "entries" {
            TileKind::Entries
        } else {
            let level = canonical_decimal(head)
                .and_then(|l| u8::try_from(l).ok())
                .filter(|l| *l <= 63)
                .ok_or_else(|| malformed("the level is not 0 to 63"))?;
            TileKind::Hashes { level }
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let width = canonical_decimal(width)
                    .and_then(|w| u8::try_from(w).ok())
                    .filter(|w| *w >= 1)
                    .ok_or_else(|| malformed("the partial width is not 1 to 255"))?;
                (index, Some(width))
            }
            None => (rest, None),
        };
        Ok(Self { kind, index: parse_index(index)?, width })
    }

    /// The path after `tile/`.
    pub fn to_path(&self) -> String {
        let head = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".into(),
        };
        let width = self.width.map(|w| format!(".p/{w}")).unwrap_or_default();
        format!("{head}/{}{width}", encode_index(self.index))
    }
}

/// `<N>` as path elements: three digits each, all but the last prefixed with `x`.
pub fn encode_index(index: u64) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// Reads `<N>` strictly: the canonical encoding only (no leading all-zero group, no short group).
pub fn parse_index(text: &str) -> Result<u64, FormatError> {
    let elements: Vec<&str> = text.split('/').collect();
    let Some((last, leading)) = elements.split_last() else {
        return Err(malformed("empty index"));
    };
    let three_digits = |group: &str| group.len() == 3 && group.bytes().all(|b| b.is_ascii_digit());
    let mut index: u64 = 0;
    for (i, element) in leading.iter().enumerate() {
        let group =
            element.strip_prefix('x').filter(|g| three_digits(g)).ok_or_else(|| malformed("bad index group"))?;
        if i == 0 && group == "000" {
            return Err(malformed("the index has a leading zero group"));
        }
        index = push_group(index, group)?;
    }
    if !three_digits(last) {
        return Err(malformed("bad index group"));
    }
    push_group(index, last)
}

fn push_group(index: u64, group: &str) -> Result<u64, FormatError> {
    let value: u64 = group.parse().map_err(|_| malformed("bad index group"))?;
    index.checked_mul(1000).and_then(|i| i.checked_add(value)).ok_or_else(|| malformed("the index is too large"))
}

/// An entry bundle: each entry as a big-endian u16 length and its bytes. Fails naming the first entry
/// (its position in `entries`) longer than 65535 bytes.
pub fn entry_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, usize> {
    let mut bundle = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let length = u16::try_from(entry.len()).map_err(|_| i)?;
        bundle.extend_from_slice(&length.to_be_bytes());
        bundle.extend_from_slice(entry);
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_written_as_the_specification_does_and_agree_with_tlog_tiles() {
        assert_eq!(encode_index(1_234_067), "x001/x234/067");
        assert_eq!(encode_index(0), "000");
        assert_eq!(encode_index(1000), "x001/000");
        // tlog_tiles writes Go sumdb paths (`tile/<H>/<L>/<N>[.p/<W>]`, `data` for entries); the `<N>[.p/<W>]`
        // part is the one C2SP tlog-tiles uses.
        for (level, index, width) in
            [(0u8, 0u64, 256u32), (1, 1_234_067, 17), (2, 999, 255), (0, 1000, 1), (63, u64::MAX, 256)]
        {
            let theirs = tlog_tiles::Tile::new(8, level, index, width, false).path();
            let ours = TilePath {
                kind: TileKind::Hashes { level },
                index,
                width: (width < 256).then(|| u8::try_from(width).unwrap()),
            };
            assert_eq!(format!("tile/8/{}", ours.to_path()), theirs);
            assert_eq!(TilePath::parse(theirs.strip_prefix("tile/8/").unwrap()).unwrap(), ours);
            let data = tlog_tiles::Tile::new(8, 0, index, width, true).path();
            let bundle = TilePath { kind: TileKind::Entries, ..ours };
            assert_eq!(data.strip_prefix("tile/8/data/"), bundle.to_path().strip_prefix("entries/"));
        }
    }

    #[test]
    fn non_canonical_paths_are_refused() {
        for bad in [
            "0/1",
            "0/01",
            "0/0001",
            "0/x000/001",
            "0/001/002",
            "0/x1/001",
            "00/001",
            "64/001",
            "0/001.p/0",
            "0/001.p/256",
            "0/001.p/01",
            "0/001.p/",
            "entries/",
            "0/",
            "0",
            "-1/001",
            "0/x018/x446/x744/x073/x709/x551/616",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_index("x018/x446/x744/x073/x709/x551/615").unwrap(), u64::MAX);
    }

    #[test]
    fn an_entry_bundle_prefixes_lengths_and_refuses_entries_over_65535_bytes() {
        assert_eq!(entry_bundle([b"ab".as_slice(), b"".as_slice()]).unwrap(), [0, 2, b'a', b'b', 0, 0]);
        let big = vec![0; MAX_BUNDLED_ENTRY + 1];
        assert_eq!(entry_bundle([b"a".as_slice(), &big]), Err(1));
    }
}
