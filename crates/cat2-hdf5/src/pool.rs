//! The chunk makers: a few threads of their own that make every HDF5 chunk. libhdf5's calls are
//! serialised anyway and compression has the machine's cores, so more makers would only hold
//! more multi-MB chunk buffers; and on the blocking pool's many threads, glibc's per-thread
//! arenas kept each thread's buffers resident (the publisher's peak RSS serving a 400 MB
//! deflate file was 250 MB; see BENCHMARKS.md).

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

fn queue() -> &'static Mutex<mpsc::Sender<Job>> {
    static Q: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    Q.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2);
        for i in 0..n {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("cat2-hdf5-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let guard =
                                rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            guard.recv()
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a chunk maker thread");
            }
        }
        Mutex::new(tx)
    })
}

/// Runs `job` on a chunk maker and waits for its result (blocking: call it from the blocking
/// pool). A job that panics gives an error, not a panic here.
pub(crate) fn run<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, cat2_format::FormatError> + Send + 'static,
) -> Result<T, cat2_format::FormatError> {
    let (tx, rx) = mpsc::sync_channel(1);
    let wrapped: Job = Box::new(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        let _ = tx.send(out);
    });
    let failed = || cat2_format::FormatError::Unreadable {
        path: "(HDF5 chunk maker)".into(),
        nchunk: 0,
        reason: "the chunk maker stopped".into(),
    };
    queue()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send(wrapped)
        .map_err(|_| failed())?;
    match rx.recv() {
        Ok(Ok(r)) => r,
        _ => Err(failed()),
    }
}
