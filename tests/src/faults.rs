//! Fault injection: a loopback TCP proxy in front of one dependency (DynamoDB, S3
//! or clamd), switchable while requests run. Point the app at [`FaultProxy::addr`]
//! ([`FaultProxy::url`] for the AWS endpoints, [`FaultProxy::scanner`] for clamd)
//! and [`FaultProxy::set`] a [`Fault`]:
//!
//! - [`Fault::Pass`]: forwards everything;
//! - [`Fault::Refuse`]: the dependency is down: new connections are reset at once,
//!   open (pooled) ones on their next byte;
//! - [`Fault::ResetAfter`]: the dependency dies mid-stream: the next `n` bytes (both
//!   directions, every connection, counted from `set`) pass, then every connection
//!   is reset;
//! - [`Fault::Delay`]: every chunk waits this long (a slow dependency);
//! - [`Fault::Stall`]: nothing moves until the fault changes (a hung dependency).
//!
//! Resets are real TCP resets (`SO_LINGER` 0), as a dying host or load balancer
//! sends them. The proxy stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_media::scan::Scanner;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    Refuse,
    ResetAfter(u64),
    Delay(Duration),
    Stall,
}

struct Shared {
    upstream: SocketAddr,
    fault: watch::Sender<Fault>,
    /// Bytes forwarded, both directions, since the proxy started.
    forwarded: AtomicU64,
    /// Bytes forwarded since the fault was last set (the budget of `ResetAfter`).
    since_set: AtomicU64,
    resets: AtomicU64,
}

/// A proxy on 127.0.0.1:0 in front of `upstream`.
pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`host:port`, or an `http://` URL).
    pub async fn start(upstream: &str) -> Self {
        let hostport = upstream.trim_start_matches("http://").trim_end_matches('/');
        let upstream = tokio::net::lookup_host(hostport)
            .await
            .unwrap_or_else(|e| panic!("resolve {hostport}: {e}"))
            .next()
            .expect("an upstream address");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            fault: watch::Sender::new(Fault::Pass),
            forwarded: AtomicU64::new(0),
            since_set: AtomicU64::new(0),
            resets: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept(listener, shared.clone()));
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:port`, for an AWS endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A clamd client that connects through this proxy (5 s connect, 20 s read).
    pub fn scanner(&self) -> Scanner {
        Scanner::new(self.addr.to_string().parse().expect("host:port"))
            .with_timeouts(Duration::from_secs(5), Duration::from_secs(20))
    }

    /// Switches the fault; `ResetAfter` counts from now.
    pub fn set(&self, fault: Fault) {
        self.shared.since_set.store(0, Ordering::SeqCst);
        self.shared.fault.send_replace(fault);
    }

    pub fn fault(&self) -> Fault {
        *self.shared.fault.borrow()
    }

    /// Bytes forwarded (both directions) since the proxy started.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Connections reset by the proxy so far.
    pub fn resets(&self) -> u64 {
        self.shared.resets.load(Ordering::SeqCst)
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let fault = *shared.fault.borrow();
            let spent = matches!(fault, Fault::ResetAfter(n) if shared.since_set.load(Ordering::SeqCst) >= n);
            if fault == Fault::Refuse || spent {
                reset(&shared, &client, None);
                return;
            }
            let Ok(upstream) = TcpStream::connect(shared.upstream).await else {
                reset(&shared, &client, None);
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            pipe(shared, client, upstream).await;
        });
    }
}

/// Drops the connection with a TCP reset.
fn reset(shared: &Shared, client: &TcpStream, upstream: Option<&TcpStream>) {
    shared.resets.fetch_add(1, Ordering::SeqCst);
    let _ = client.set_zero_linger();
    if let Some(u) = upstream {
        let _ = u.set_zero_linger();
    }
}

/// The part of a chunk of `len` bytes the fault lets through now: `Some(n)` bytes
/// (then reset if `n < len`), or `None` to reset at once. Waits out `Delay` and
/// `Stall`.
async fn admit(shared: &Shared, len: usize) -> Option<usize> {
    let mut rx = shared.fault.subscribe();
    loop {
        let fault = *rx.borrow_and_update();
        match fault {
            Fault::Pass => return Some(len),
            Fault::Refuse => return None,
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                return Some(len);
            }
            Fault::Stall => {
                if rx.changed().await.is_err() {
                    return None;
                }
            }
            Fault::ResetAfter(budget) => {
                let before = shared.since_set.fetch_add(len as u64, Ordering::SeqCst);
                let left = budget.saturating_sub(before);
                return (left > 0).then_some(len.min(left as usize));
            }
        }
    }
}

async fn pipe(shared: Arc<Shared>, mut client: TcpStream, mut upstream: TcpStream) {
    let mut up_buf = vec![0u8; 16 * 1024];
    let mut down_buf = vec![0u8; 16 * 1024];
    let (mut client_done, mut upstream_done) = (false, false);
    let cut = loop {
        if client_done && upstream_done {
            break false;
        }
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        // One chunk in either direction, through the fault.
        let (from_client, read) = tokio::select! {
            r = cr.read(&mut up_buf), if !client_done => (true, r),
            r = ur.read(&mut down_buf), if !upstream_done => (false, r),
        };
        let step = if from_client {
            forward(&shared, read, &up_buf, &mut uw, true).await
        } else {
            forward(&shared, read, &down_buf, &mut cw, false).await
        };
        match step {
            Step::Moved => {}
            Step::Eof(from_client) => {
                if from_client {
                    client_done = true;
                    let _ = uw.shutdown().await;
                } else {
                    upstream_done = true;
                    let _ = cw.shutdown().await;
                }
            }
            Step::Cut => break true,
        }
    };
    if cut {
        reset(&shared, &client, Some(&upstream));
    }
}

enum Step {
    Moved,
    /// End of stream from the client (`true`) or the upstream.
    Eof(bool),
    Cut,
}

async fn forward<W: AsyncWriteExt + Unpin>(
    shared: &Shared,
    read: std::io::Result<usize>,
    buf: &[u8],
    to: &mut W,
    from_client: bool,
) -> Step {
    let n = match read {
        Ok(0) => return Step::Eof(from_client),
        Ok(n) => n,
        Err(_) => return Step::Cut,
    };
    let Some(allowed) = admit(shared, n).await else {
        return Step::Cut;
    };
    if to.write_all(&buf[..allowed]).await.is_err() {
        return Step::Cut;
    }
    shared.forwarded.fetch_add(allowed as u64, Ordering::SeqCst);
    if allowed < n {
        Step::Cut
    } else {
        Step::Moved
    }
}
