//! The proxy's serving threads. Each is a single-threaded event loop with
//! its own upstream connections, as nginx's worker processes are: a
//! connection stays on one thread, so no task moves between threads and no
//! wake-up crosses them, which the work-stealing runtime paid on every
//! forwarded request (the client's connection task and the upstream
//! connection's task on different threads).
//!
//! The first [`ACCEPTORS`] accept on the one listening socket
//! (duplicated: no other process can bind beside it, as one could with
//! `SO_REUSEPORT`), and the thread that accepts hands the connection to
//! the thread serving the fewest (itself on a tie): wrk's or a load
//! balancer's connections arrive in a burst that one thread would
//! otherwise take whole.

use std::{
    cell::Cell,
    net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};

use super::Proxy;

thread_local! {
    /// This thread's worker number (0 off the workers).
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The worker number of the calling thread: which upstream connection
/// pool it uses (0 on a thread that is no worker).
pub(super) fn index() -> usize {
    INDEX.with(Cell::get)
}

/// The running workers: dropping this (or [`Workers::stop`]) stops them
/// and closes their connections.
pub struct Workers {
    stop: Option<watch::Sender<bool>>,
    threads: Vec<JoinHandle<()>>,
    peers: Arc<[Peer]>,
}

impl Workers {
    /// How many threads serve.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// The connections each worker serves now.
    pub fn serving(&self) -> Vec<usize> {
        serving(&self.peers)
    }

    /// Whether none does (never, once spawned).
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Stops accepting, closes the connections and waits for the threads.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.halt();
    }
}

/// How many workers accept: each new connection wakes every one that
/// does (all wait on the one socket), and all but one find nothing; the
/// others are only handed connections.
const ACCEPTORS: usize = 4;

/// What the workers know of each other.
pub(super) struct Peer {
    /// Connections handed to this worker.
    inbox: mpsc::UnboundedSender<(StdStream, SocketAddr)>,
    /// Connections it serves (or was handed and has not started).
    active: AtomicUsize,
    /// Whether its loop still runs (a worker whose loop ended is handed
    /// nothing).
    alive: AtomicBool,
}

/// The connections each worker serves now.
pub(super) fn serving(peers: &[Peer]) -> Vec<usize> {
    peers
        .iter()
        .map(|p| p.active.load(Ordering::Relaxed))
        .collect()
}

/// Marks a worker's loop ended when dropped (also by a panic).
struct Ended(Arc<[Peer]>, usize);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0[self.1].alive.store(false, Ordering::Relaxed);
    }
}

/// Counts a connection down when its task ends.
struct Serving(Arc<[Peer]>, usize);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0[self.1].active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The live worker serving the fewest connections, `me` on a tie.
fn least_loaded(peers: &[Peer], me: usize) -> usize {
    let mut best = me;
    let mut load = peers[me].active.load(Ordering::Relaxed);
    for (i, p) in peers.iter().enumerate() {
        let l = p.active.load(Ordering::Relaxed);
        if l < load && p.alive.load(Ordering::Relaxed) {
            (best, load) = (i, l);
        }
    }
    best
}

impl Proxy {
    /// Serves `listener` on [`ProxyConfig::workers`](super::ProxyConfig::workers)
    /// threads of their own (worker 0 also runs the janitor of the rate
    /// limits and behaviour windows). Every fallible step (the runtimes,
    /// the socket's registrations) is taken before a thread starts.
    pub fn spawn_workers(self: &Arc<Self>, listener: StdListener) -> std::io::Result<Workers> {
        listener.set_nonblocking(true)?;
        let (tx, rx) = watch::channel(false);
        let n = self.clients.len();
        let mut loops = Vec::with_capacity(n);
        let mut peers = Vec::with_capacity(n);
        for _ in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let l = if loops.len() < ACCEPTORS {
                let _in = rt.enter();
                Some(TcpListener::from_std(listener.try_clone()?)?)
            } else {
                None
            };
            let (inbox, handed) = mpsc::unbounded_channel();
            peers.push(Peer {
                inbox,
                active: AtomicUsize::new(0),
                alive: AtomicBool::new(true),
            });
            loops.push((rt, l, handed));
        }
        let peers: Arc<[Peer]> = peers.into();
        // The stats read the counts; the first set of workers is the one.
        let _ = self.workers.set(peers.clone());
        let mut workers = Workers {
            stop: Some(tx),
            threads: Vec::with_capacity(n),
            peers: peers.clone(),
        };
        for (i, (rt, l, handed)) in loops.into_iter().enumerate() {
            let me = self.clone();
            let mut rx = rx.clone();
            let peers = peers.clone();
            let t = std::thread::Builder::new()
                .name(format!("waf-proxy-{i}"))
                .spawn(move || {
                    let _ended = Ended(peers.clone(), i);
                    INDEX.with(|c| c.set(i));
                    rt.block_on(async move {
                        let _janitor = (i == 0).then(|| me.janitor());
                        tokio::select! {
                            _ = me.work(i, l, handed, peers) => {}
                            _ = rx.wait_for(|stop| *stop) => {}
                        }
                    });
                })?;
            workers.threads.push(t);
        }
        Ok(workers)
    }

    /// Worker `me`'s loop: accepts (if it is one of the acceptors), hands
    /// each connection to the least loaded worker, and serves the ones it
    /// keeps or is handed.
    async fn work(
        self: &Arc<Self>,
        me: usize,
        listener: Option<TcpListener>,
        mut handed: mpsc::UnboundedReceiver<(StdStream, SocketAddr)>,
        peers: Arc<[Peer]>,
    ) {
        let builder = self.conn_builder();
        let serve = |stream: TcpStream, peer: SocketAddr| {
            let serving = Serving(peers.clone(), me);
            let conn = self.clone().connection(&builder, stream, peer);
            tokio::spawn(async move {
                let _serving = serving;
                conn.await;
            });
        };
        // A connection counted here but registered with no loop yet.
        let take = |stream: StdStream, peer: SocketAddr| match TcpStream::from_std(stream) {
            Ok(stream) => serve(stream, peer),
            Err(e) => {
                peers[me].active.fetch_sub(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "proxy: taking a connection over failed");
            }
        };
        loop {
            tokio::select! {
                accepted = async {
                    match &listener {
                        Some(l) => l.accept().await,
                        None => std::future::pending().await,
                    }
                } => match accepted {
                    Ok((stream, peer)) => {
                        let to = least_loaded(&peers, me);
                        peers[to].active.fetch_add(1, Ordering::Relaxed);
                        if to == me {
                            serve(stream, peer);
                            continue;
                        }
                        let stream = match stream.into_std() {
                            Ok(s) => s,
                            Err(e) => {
                                peers[to].active.fetch_sub(1, Ordering::Relaxed);
                                tracing::warn!(error = %e, "proxy: handing a connection over failed");
                                continue;
                            }
                        };
                        // A worker whose loop ended between the choice
                        // and the hand-over: served here instead.
                        if let Err(mpsc::error::SendError((stream, peer))) =
                            peers[to].inbox.send((stream, peer))
                        {
                            peers[to].active.fetch_sub(1, Ordering::Relaxed);
                            peers[me].active.fetch_add(1, Ordering::Relaxed);
                            take(stream, peer);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                Some((stream, peer)) = handed.recv() => take(stream, peer),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(loads: &[(usize, bool)]) -> Vec<Peer> {
        loads
            .iter()
            .map(|&(active, alive)| Peer {
                inbox: mpsc::unbounded_channel().0,
                active: AtomicUsize::new(active),
                alive: AtomicBool::new(alive),
            })
            .collect()
    }

    #[test]
    fn the_live_worker_serving_fewest_is_chosen_and_the_chooser_on_a_tie() {
        assert_eq!(
            least_loaded(&peers(&[(3, true), (1, true), (1, true)]), 0),
            1
        );
        assert_eq!(least_loaded(&peers(&[(1, true), (1, true)]), 1), 1);
        assert_eq!(least_loaded(&peers(&[(2, true), (2, true)]), 0), 0);
        // A worker whose loop ended is never chosen, however idle.
        assert_eq!(
            least_loaded(&peers(&[(3, true), (0, false), (2, true)]), 0),
            2
        );
        assert_eq!(least_loaded(&peers(&[(5, true), (0, false)]), 0), 0);
    }
}
