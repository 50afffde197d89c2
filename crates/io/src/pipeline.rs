//! Transform ahead: while the calling thread writes one transformed piece of
//! a large input, a helper thread transforms the next one.
//!
//! A format change that cannot be a plain copy (Caffe2's unpacked floats:
//! a key byte before every 4-byte float, one way or the other) costs two
//! passes over each piece: the transform into a buffer, then the write,
//! where the kernel copies the buffer into the page cache. Run one after
//! the other they add up; with [`transform_ahead`] the transform of piece
//! `i + 1` overlaps the write of piece `i`, so the whole takes about as long
//! as the slower of the two. Two buffers circulate between the threads, so
//! memory stays at two transformed pieces. The writer stays on the calling
//! thread (it need not be `Send`); the output is the same bytes in the same
//! order as the sequential loop's.

use std::sync::mpsc;

/// Below this many pieces the transform runs on the calling thread (a
/// thread costs more than it saves on a short input).
const MIN_PIECES: usize = 3;

/// Calls `transform(piece, buf)` for each of `pieces` (with `buf` cleared)
/// and `consume(buf, info)` with each result in order, where `info` is what
/// `transform` returned; stops at the first `consume` that returns
/// `Ok(false)` or an error (which is returned). With at least
/// [`MIN_PIECES`] pieces (as the iterator's lower size bound says), the
/// transforms run on a scoped helper thread, one piece ahead; a piece
/// transformed after a stop is dropped unseen.
pub fn transform_ahead<P, T, E, I>(
    pieces: I,
    transform: impl Fn(P, &mut Vec<u8>) -> T + Sync,
    mut consume: impl FnMut(&[u8], T) -> Result<bool, E>,
) -> Result<(), E>
where
    I: Iterator<Item = P> + Send,
    P: Send,
    T: Send,
{
    if pieces.size_hint().0 < MIN_PIECES {
        let mut buf = Vec::new();
        for piece in pieces {
            buf.clear();
            let info = transform(piece, &mut buf);
            if !consume(&buf, info)? {
                break;
            }
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        // Transformed pieces go to the writer; emptied buffers come back.
        let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, T)>(1);
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
        for _ in 0..2 {
            // The receiver is alive: it is moved into the thread below.
            let _ = empty_tx.send(Vec::new());
        }
        let transform = &transform;
        scope.spawn(move || {
            for piece in pieces {
                // A closed channel means the writer stopped: so do we.
                let Ok(mut buf) = empty_rx.recv() else {
                    return;
                };
                buf.clear();
                let info = transform(piece, &mut buf);
                if full_tx.send((buf, info)).is_err() {
                    return;
                }
            }
        });
        let mut result = Ok(());
        for (buf, info) in full_rx.iter() {
            match consume(&buf, info) {
                Ok(true) => {
                    let _ = empty_tx.send(buf);
                }
                Ok(false) => break,
                Err(err) => {
                    result = Err(err);
                    break;
                }
            }
        }
        // Closing both channels ends the helper wherever it waits; the
        // scope joins it.
        drop(full_rx);
        drop(empty_tx);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(piece: &[u8], buf: &mut Vec<u8>) -> usize {
        for &b in piece {
            buf.extend_from_slice(&[b, b]);
        }
        piece.len()
    }

    #[test]
    fn the_output_is_the_sequential_one_for_any_length() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        for pieces in [1, 2, 3, 7, 100] {
            let size = data.len().div_ceil(pieces);
            let mut out = Vec::new();
            let mut seen = 0;
            transform_ahead(data.chunks(size), double, |b, n| {
                out.extend_from_slice(b);
                seen += n;
                Ok::<_, ()>(true)
            })
            .unwrap();
            let want: Vec<u8> = data.iter().flat_map(|&b| [b, b]).collect();
            assert_eq!(out, want, "{pieces} pieces");
            assert_eq!(seen, data.len());
        }
    }

    #[test]
    fn a_stop_or_an_error_ends_the_helper_early() {
        let data = vec![1u8; 1000];
        let mut calls = 0;
        transform_ahead(data.chunks(10), double, |_, _| {
            calls += 1;
            Ok::<_, ()>(calls < 5)
        })
        .unwrap();
        assert_eq!(calls, 5);
        let mut calls = 0;
        let err = transform_ahead(data.chunks(10), double, |_, _| {
            calls += 1;
            if calls == 3 {
                Err("full disk")
            } else {
                Ok(true)
            }
        });
        assert_eq!(err, Err("full disk"));
        assert_eq!(calls, 3);
    }
}
