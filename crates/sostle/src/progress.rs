//! The progress line of long runs (`checked N/M files` on stderr, only when stderr is a
//! terminal), fed by the run's per-file callback.

use std::sync::Arc;

/// A progress line on stderr (`checked N/M files`) for runs longer than a second, only when
/// stderr is a terminal; cleared when the run ends.
pub struct Progress {
    done: Arc<std::sync::atomic::AtomicUsize>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts the line for `total` files (shown after a second).
    pub fn start(total: usize) -> Progress {
        use std::io::IsTerminal;
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        if total == 0 || !std::io::stderr().is_terminal() {
            return Progress {
                done,
                stop: None,
                thread: None,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let seen = done.clone();
        let thread = std::thread::spawn(move || {
            use std::io::Write;
            use std::sync::mpsc::RecvTimeoutError;
            if !matches!(
                rx.recv_timeout(std::time::Duration::from_secs(1)),
                Err(RecvTimeoutError::Timeout)
            ) {
                return;
            }
            loop {
                let n = seen.load(std::sync::atomic::Ordering::Relaxed);
                let _ = write!(std::io::stderr(), "\rchecked {n}/{total} files");
                if !matches!(
                    rx.recv_timeout(std::time::Duration::from_millis(100)),
                    Err(RecvTimeoutError::Timeout)
                ) {
                    let _ = write!(std::io::stderr(), "\r\x1b[2K");
                    return;
                }
            }
        });
        Progress {
            done,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// One more file checked.
    pub fn tick(&self) {
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
