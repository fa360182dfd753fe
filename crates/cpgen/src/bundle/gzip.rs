//! A gzip writer that deflates fixed-size pieces of its input on every core and joins them
//! into one gzip member, as pigz does. Each piece is deflated on its own and ends with a sync
//! flush (an empty stored block, byte-aligned), so the pieces concatenate into one valid
//! deflate stream; one final empty block and the CRC-32 close it. Piece boundaries depend only
//! on the input, so the output is the same bytes with any number of threads.

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress};
use rayon::prelude::*;

/// Uncompressed bytes per piece: large enough that starting each piece without the previous
/// one's window costs little ratio.
const PIECE: usize = 1 << 20;

/// zlib's default trade-off.
const LEVEL: u32 = 6;

/// The gzip header: deflate, no name, mtime 0, XFL 0 (neither fastest nor best), OS 255
/// (unknown), so that it says nothing of where or when it was made.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A final fixed-Huffman block holding only end-of-block.
const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];

pub(crate) struct ParallelGz<W: Write> {
    out: W,
    header_written: bool,
    crc: crc32fast::Hasher,
    /// Input length modulo 2^32, as the trailer wants it.
    size: u32,
    current: Vec<u8>,
    full: Vec<Vec<u8>>,
}

impl<W: Write> ParallelGz<W> {
    pub(crate) fn new(out: W) -> ParallelGz<W> {
        ParallelGz {
            out,
            header_written: false,
            crc: crc32fast::Hasher::new(),
            size: 0,
            current: Vec::with_capacity(PIECE),
            full: Vec::new(),
        }
    }

    /// Deflates the full pieces on every core and writes them in order.
    fn write_pieces(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        let pieces = std::mem::take(&mut self.full);
        let deflated = pieces
            .par_iter()
            .map(|piece| deflate(piece))
            .collect::<io::Result<Vec<_>>>()?;
        deflated
            .iter()
            .try_for_each(|piece| self.out.write_all(piece))
    }

    /// Writes what is left, closes the stream and gives back the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if !self.current.is_empty() {
            self.full.push(std::mem::take(&mut self.current));
        }
        self.write_pieces()?;
        self.out.write_all(&FINAL_EMPTY_BLOCK)?;
        self.out
            .write_all(&self.crc.clone().finalize().to_le_bytes())?;
        self.out.write_all(&self.size.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = PIECE - self.current.len();
        let taken = &buf[..buf.len().min(room)];
        self.current.extend_from_slice(taken);
        self.crc.update(taken);
        // Truncation is the format's: ISIZE is the length modulo 2^32.
        self.size = self.size.wrapping_add(taken.len() as u32);
        if self.current.len() == PIECE {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(PIECE));
            self.full.push(full);
            // A round keeps every core busy; its size does not change the output.
            if self.full.len() >= 2 * rayon::current_num_threads() {
                self.write_pieces()?;
            }
        }
        Ok(taken.len())
    }

    /// Pieces are only ever written whole (cutting one short would change the output), so
    /// this flushes only what is already compressed.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The empty stored block a sync flush ends with.
const SYNC_MARKER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// One piece as raw deflate blocks ending in a sync flush.
fn deflate(piece: &[u8]) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(Compression::new(LEVEL), false);
    // miniz continues a sync flush that did not fit the output on the next call, but drops
    // its closing empty block (Frommi/miniz_oxide#105). So the output gets deflate's
    // worst case (zlib's compressBound, plus the marker) and everything happens in one call.
    let bound = piece.len() + (piece.len() >> 12) + (piece.len() >> 14) + 64;
    let mut out = Vec::with_capacity(bound);
    compress
        .compress_vec(piece, &mut out, FlushCompress::Sync)
        .map_err(io::Error::other)?;
    let all_in = usize::try_from(compress.total_in()).is_ok_and(|n| n == piece.len());
    if all_in && out.len() < out.capacity() && out.ends_with(&SYNC_MARKER) {
        Ok(out)
    } else {
        Err(io::Error::other(
            "deflate did not finish a piece in one call",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gzip(data: &[u8], chunks: usize) -> Vec<u8> {
        let mut gz = ParallelGz::new(Vec::new());
        for part in data.chunks(chunks.max(1)) {
            gz.write_all(part).unwrap();
        }
        gz.finish().unwrap()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // The single-member decoder: the output must be one gzip member.
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn round_trips_across_piece_boundaries_and_rounds() {
        // Several rounds of pieces and a partial last one, mixed compressible and random.
        let mut data = Vec::new();
        let mut x: u32 = 1;
        for i in 0..(9 * PIECE + 12_345) {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            data.push(if i % 3 == 0 { (x >> 24) as u8 } else { b'a' });
        }
        let packed = gzip(&data, 70_000);
        assert_eq!(gunzip(&packed), data);
        assert!(packed.len() < data.len(), "it compresses");
        // How the input arrives does not change the output.
        assert_eq!(gzip(&data, 4096), packed);
    }

    /// Runs of 4 KiB of one byte alternating with noise: some stretches compress, some not.
    fn runs_and_noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / 4096) % 2 == 0 {
                    b'k'
                } else {
                    x as u8
                }
            })
            .collect()
    }

    #[test]
    fn a_piece_whose_flush_overflows_a_half_size_buffer_round_trips() {
        // Found by the property below: this piece's flush did not fit the output it was
        // first given, and miniz dropped the flush's closing block when continuing.
        let data = runs_and_noise(0, 1_857_364);
        assert_eq!(gunzip(&gzip(&data, 1)), data);
    }

    #[test]
    fn empty_and_tiny_inputs_are_valid_gzip() {
        for data in [&b""[..], b"x", &[0u8; PIECE][..]] {
            assert_eq!(gunzip(&gzip(data, 7)), data);
        }
    }

    #[test]
    fn the_same_bytes_with_one_thread_or_many() {
        let data: Vec<u8> = (0..5 * PIECE as u32).map(|i| (i * 7 % 251) as u8).collect();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| gzip(&data, 100_000));
        let four = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(|| gzip(&data, 100_000));
        assert_eq!(one, four);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        #[test]
        fn any_bytes_written_in_any_sizes_round_trip(
            seed: u64,
            len in 0usize..(3 * PIECE),
            step in 1usize..200_000,
        ) {
            let data = runs_and_noise(seed, len);
            proptest::prop_assert_eq!(gunzip(&gzip(&data, step)), data);
        }
    }
}
