//! A Kafka-aware TCP fault proxy for the client path (reliability.md, "Fault proxy").
//!
//! One [`FaultProxy`] listens on a free loopback port and relays every connection to one
//! broker listener (PLAINTEXT only: the proxy reads frames, which TLS would hide). It relays
//! whole Kafka frames: it reads the 4-byte size prefix and the request header (`api_key`,
//! `api_version`, `correlation_id`) and remembers each correlation id's API, because response
//! headers carry only the id (kafka-wire.md §2). That lets it
//!
//! * **keep itself in the path**: Metadata, FindCoordinator and DescribeCluster responses are
//!   decoded and every broker port it knows ([`FaultProxy::map_port`]) is rewritten to its own
//!   port, so a client that reconnects to the advertised brokers comes back through the proxy
//!   (the broker's real `advertised.listeners` stay untouched, and inter-broker and controller
//!   traffic never crosses the proxy);
//! * **corrupt one byte inside a Fetch response's `records`**, after the 61-byte header of the
//!   first batch, so that only the batch CRC-32C can catch it ([`Fault::CorruptFetch`]).
//!
//! The other faults follow Trogdor's `NetworkPartitionFault` / `DegradedNetworkFault` and
//! toxiproxy's toxics: [`Fault::Blackhole`] (stop reading and writing, no RST: TCP backpressure
//! builds), [`Fault::Reset`] (close every connection with linger 0, sending an RST, and refuse
//! new ones the same way), [`Fault::Delay`], [`Fault::Bandwidth`], [`Fault::CutAfter`] (forward
//! `n` more bytes of a connection, mid-frame if need be, then RST). A fault is switched at run
//! time with [`FaultProxy::set`]; every switch and every corruption goes to a timeline
//! ([`FaultProxy::timeline`]) that tests print on failure.
//!
//! The proxy runs on its own single-thread tokio runtime in a background thread, so it serves
//! synchronous tests and outlives the runtimes of the code under test. Dropping it stops it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
pub use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{
    DescribeClusterResponse, FetchResponse, FindCoordinatorResponse, MetadataResponse,
    ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Largest frame the proxy relays (a Fetch response is at most `fetch.max.bytes`, 50 MiB by
/// default; a broker's `socket.request.max.bytes` is 100 MiB).
pub const MAX_PROXY_FRAME: usize = 256 << 20;

/// Size of a v2 record batch header (kafka-wire.md §1.2).
const BATCH_HEADER: usize = 61;

/// Whether [`Fault::CorruptFetch`] flips one response or every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// The next Fetch response with records is corrupted, then the proxy heals itself.
    Once,
    /// Every Fetch response with records is corrupted until the fault changes.
    Persistent,
}

/// The proxy's fault state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fault {
    /// Relay unchanged.
    #[default]
    Pass,
    /// Stop reading and writing on every connection (new ones are accepted and held): no RST,
    /// the peers see only silence and TCP backpressure.
    Blackhole,
    /// Close every connection with an RST (linger 0); new connections are reset at once.
    Reset,
    /// Hold every frame this long before forwarding it (both directions).
    Delay(Duration),
    /// Forward at most this many bytes per second per connection and direction.
    Bandwidth(u64),
    /// [`Fault::Delay`] and [`Fault::Bandwidth`] together (Trogdor's `DegradedNetworkFault`).
    Slow {
        /// Latency added to every frame.
        delay: Duration,
        /// Rate limit per connection and direction.
        bytes_per_sec: u64,
    },
    /// Each connection forwards this many more bytes (both directions together), then is
    /// reset, mid-frame if the limit falls inside one.
    CutAfter(u64),
    /// Flip one byte inside the records payload of a Fetch response.
    CorruptFetch(Corruption),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pass => f.write_str("pass"),
            Self::Blackhole => f.write_str("blackhole"),
            Self::Reset => f.write_str("reset"),
            Self::Delay(d) => write!(f, "delay({d:?})"),
            Self::Bandwidth(b) => write!(f, "bandwidth({b} B/s)"),
            Self::Slow {
                delay,
                bytes_per_sec,
            } => write!(f, "slow({delay:?}, {bytes_per_sec} B/s)"),
            Self::CutAfter(n) => write!(f, "cut-after({n} B)"),
            Self::CorruptFetch(c) => write!(f, "corrupt-fetch({c:?})"),
        }
    }
}

/// One line of a proxy's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// Time since the proxy started.
    pub at: Duration,
    /// What happened.
    pub what: String,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    corrupted: AtomicU64,
    requests: Mutex<BTreeMap<i16, u64>>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    started: Instant,
    upstream: SocketAddr,
    fault: watch::Sender<Fault>,
    port_map: Mutex<HashMap<i32, i32>>,
    timeline: Mutex<Vec<TimelineEntry>>,
    counters: Counters,
}

impl Shared {
    fn log(&self, what: String) {
        let at = self.started.elapsed();
        self.timeline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(TimelineEntry { at, what });
    }

    fn fault(&self) -> Fault {
        *self.fault.borrow()
    }
}

/// A fault proxy in front of one broker listener. See the module docs.
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy relaying to `upstream` (`host:port`). `name` labels its timeline.
    pub fn start(name: &str, upstream: &str) -> io::Result<Self> {
        let upstream: SocketAddr = upstream
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{upstream}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let listener = std_listener;
        let addr = listener.local_addr()?;
        let (fault, _) = watch::channel(Fault::Pass);
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            started: Instant::now(),
            upstream,
            fault,
            port_map: Mutex::new(HashMap::from([(
                i32::from(upstream.port()),
                i32::from(addr.port()),
            )])),
            timeline: Mutex::new(Vec::new()),
            counters: Counters::default(),
        });
        shared.log(format!(
            "{name}: listening on {addr}, relaying to {upstream}"
        ));
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let accept_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{name}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        () = accept_loop(listener, accept_shared) => {}
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime aborts every connection task.
            })?;
        Ok(Self {
            shared,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Starts a proxy in front of `cluster`'s PLAINTEXT listener.
    pub fn for_cluster(name: &str, cluster: &crate::Cluster) -> io::Result<Self> {
        Self::start(name, &cluster.bootstrap(crate::Listener::Plaintext))
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's `host:port`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Also rewrites broker port `broker_port` to `proxy_port` in Metadata, FindCoordinator and
    /// DescribeCluster responses (for a cluster with several brokers, each behind its own
    /// proxy). The proxy's own upstream is mapped from the start.
    pub fn map_port(&self, broker_port: u16, proxy_port: u16) {
        self.shared
            .port_map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(i32::from(broker_port), i32::from(proxy_port));
    }

    /// Switches the fault (logged on the timeline).
    pub fn set(&self, fault: Fault) {
        self.shared
            .log(format!("{}: set {fault}", self.shared.name));
        self.shared.fault.send_replace(fault);
    }

    /// Back to [`Fault::Pass`].
    pub fn heal(&self) {
        self.set(Fault::Pass);
    }

    /// The current fault.
    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }

    /// Adds a line to the timeline (a test's own step, e.g. "broker killed").
    pub fn note(&self, what: impl Into<String>) {
        self.shared
            .log(format!("{}: {}", self.shared.name, what.into()));
    }

    /// Everything that happened, in order.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        self.shared
            .timeline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The timeline as text, one `+<secs>s <what>` line per entry.
    pub fn timeline_text(&self) -> String {
        format_timeline(&self.timeline())
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.counters.connections.load(Ordering::Relaxed)
    }

    /// Requests of `api` relayed (or held) so far.
    pub fn requests(&self, api: ApiKey) -> u64 {
        self.shared
            .counters
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(api as i16))
            .copied()
            .unwrap_or(0)
    }

    /// Requests of every API, by API key.
    pub fn request_counts(&self) -> BTreeMap<i16, u64> {
        self.shared
            .counters
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Bytes forwarded client → broker and broker → client.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.shared.counters.bytes_up.load(Ordering::Relaxed),
            self.shared.counters.bytes_down.load(Ordering::Relaxed),
        )
    }

    /// Fetch responses corrupted so far.
    pub fn corrupted(&self) -> u64 {
        self.shared.counters.corrupted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Formats timeline entries (of one proxy, or merged and sorted from several).
pub fn format_timeline(entries: &[TimelineEntry]) -> String {
    entries
        .iter()
        .map(|e| format!("+{:>8.3}s {}\n", e.at.as_secs_f64(), e.what))
        .collect()
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        let conn_shared = Arc::clone(&shared);
        // Connection errors are expected under faults: the timeline records the faults.
        tokio::spawn(async move {
            let _ = serve(client, conn_shared).await;
        });
    }
}

fn reset(stream: &TcpStream) {
    let _ = socket_linger_zero(stream);
}

fn socket_linger_zero(stream: &TcpStream) -> io::Result<()> {
    #[allow(deprecated)]
    stream.set_linger(Some(Duration::ZERO))
}

async fn serve(client: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let mut rx = shared.fault.subscribe();
    // Held connections: wait while blackholed; reset at once when resetting.
    loop {
        match *rx.borrow_and_update() {
            Fault::Reset => {
                reset(&client);
                return Ok(());
            }
            Fault::Blackhole => {}
            _ => break,
        }
        if rx.changed().await.is_err() {
            return Ok(());
        }
    }
    let server = TcpStream::connect(shared.upstream).await?;
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let inflight: Arc<Mutex<HashMap<i32, (i16, i16)>>> = Arc::default();
    let cut = Arc::new(Mutex::new(CutState::default()));
    let up = relay(
        client_read,
        server_write,
        Direction::Up,
        Arc::clone(&shared),
        Arc::clone(&inflight),
        Arc::clone(&cut),
    );
    let down = relay(
        server_read,
        client_write,
        Direction::Down,
        shared,
        inflight,
        cut,
    );
    // When either direction ends, the other is dropped with it.
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client to broker: requests.
    Up,
    /// Broker to client: responses.
    Down,
}

/// Bytes left before a [`Fault::CutAfter`] cut, per connection.
#[derive(Debug, Default)]
struct CutState {
    armed_for: Option<u64>,
    left: u64,
}

async fn relay(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    dir: Direction,
    shared: Arc<Shared>,
    inflight: Arc<Mutex<HashMap<i32, (i16, i16)>>>,
    cut: Arc<Mutex<CutState>>,
) -> io::Result<()> {
    let mut rx = shared.fault.subscribe();
    loop {
        let frame = tokio::select! {
            f = read_frame(&mut from) => f?,
            () = wait_for_reset(&mut rx) => {
                reset(to.as_ref());
                return Ok(());
            }
        };
        let Some(frame) = frame else {
            return Ok(());
        };
        let frame = match dir {
            Direction::Up => {
                if let Some((api, version, corr)) = request_header(&frame) {
                    inflight
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(corr, (api, version));
                    *shared
                        .counters
                        .requests
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(api)
                        .or_default() += 1;
                }
                frame
            }
            Direction::Down => {
                let api = peek_i32(&frame, 4).and_then(|corr| {
                    inflight
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&corr)
                });
                match api {
                    Some((api, version)) => rewrite_response(&shared, frame, api, version),
                    None => frame,
                }
            }
        };
        forward(&frame, &mut to, dir, &shared, &mut rx, &cut).await?;
    }
}

async fn wait_for_reset(rx: &mut watch::Receiver<Fault>) {
    loop {
        if *rx.borrow_and_update() == Fault::Reset {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Reads one size-prefixed frame (prefix included); `None` at a clean end of stream.
async fn read_frame(from: &mut OwnedReadHalf) -> io::Result<Option<Bytes>> {
    let mut prefix = [0u8; 4];
    match from.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = i32::from_be_bytes(prefix);
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= MAX_PROXY_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("frame size {size}")))?;
    let mut buf = BytesMut::zeroed(4 + size);
    buf[..4].copy_from_slice(&prefix);
    from.read_exact(&mut buf[4..]).await?;
    Ok(Some(buf.freeze()))
}

/// `(api_key, api_version, correlation_id)` of a request frame (size prefix included).
fn request_header(frame: &[u8]) -> Option<(i16, i16, i32)> {
    let api = i16::from_be_bytes(frame.get(4..6)?.try_into().ok()?);
    let version = i16::from_be_bytes(frame.get(6..8)?.try_into().ok()?);
    let corr = peek_i32(frame, 8)?;
    Some((api, version, corr))
}

fn peek_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Applies the current fault to one frame and writes it.
async fn forward(
    frame: &[u8],
    to: &mut OwnedWriteHalf,
    dir: Direction,
    shared: &Shared,
    rx: &mut watch::Receiver<Fault>,
    cut: &Mutex<CutState>,
) -> io::Result<()> {
    loop {
        let fault = *rx.borrow_and_update();
        match fault {
            Fault::Blackhole => {
                if rx.changed().await.is_err() {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                continue;
            }
            Fault::Reset => {
                reset(to.as_ref());
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                // Re-check: the fault may have changed while the frame waited.
                if *rx.borrow() != fault {
                    continue;
                }
                write_counted(frame, to, dir, shared).await?;
            }
            Fault::Bandwidth(_) | Fault::Slow { .. } => {
                let rate = match fault {
                    Fault::Slow {
                        delay,
                        bytes_per_sec,
                    } => {
                        tokio::time::sleep(delay).await;
                        bytes_per_sec
                    }
                    Fault::Bandwidth(rate) => rate,
                    _ => u64::MAX,
                };
                let rate = rate.max(1);
                let chunk = usize::try_from((rate / 10).clamp(1, 64 * 1024)).unwrap_or(1024);
                for piece in frame.chunks(chunk) {
                    let secs = piece.len() as f64 / rate as f64;
                    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                    write_counted(piece, to, dir, shared).await?;
                }
            }
            Fault::CutAfter(n) => {
                let send = {
                    let mut c = cut.lock().unwrap_or_else(PoisonError::into_inner);
                    if c.armed_for != Some(n) {
                        c.armed_for = Some(n);
                        c.left = n;
                    }
                    let send = c.left.min(frame.len() as u64);
                    c.left -= send;
                    usize::try_from(send).unwrap_or(0)
                };
                write_counted(&frame[..send], to, dir, shared).await?;
                if send < frame.len() {
                    to.flush().await?;
                    shared.log(format!(
                        "{}: cut a connection after {n} bytes ({dir:?}, {send} of a {} byte frame)",
                        shared.name,
                        frame.len()
                    ));
                    reset(to.as_ref());
                    return Err(io::ErrorKind::ConnectionReset.into());
                }
            }
            Fault::Pass | Fault::CorruptFetch(_) => write_counted(frame, to, dir, shared).await?,
        }
        return Ok(());
    }
}

async fn write_counted(
    bytes: &[u8],
    to: &mut OwnedWriteHalf,
    dir: Direction,
    shared: &Shared,
) -> io::Result<()> {
    to.write_all(bytes).await?;
    let counter = match dir {
        Direction::Up => &shared.counters.bytes_up,
        Direction::Down => &shared.counters.bytes_down,
    };
    counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Rewrites broker ports (Metadata, FindCoordinator, DescribeCluster) and corrupts Fetch
/// responses when asked. Frames that do not decode are relayed unchanged.
fn rewrite_response(shared: &Shared, frame: Bytes, api: i16, version: i16) -> Bytes {
    let Ok(key) = ApiKey::try_from(api) else {
        return frame;
    };
    match key {
        ApiKey::Metadata | ApiKey::FindCoordinator | ApiKey::DescribeCluster => {
            let map = shared
                .port_map
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            rewrite_ports(&frame, key, version, &map).unwrap_or(frame)
        }
        ApiKey::Fetch => {
            let Fault::CorruptFetch(mode) = shared.fault() else {
                return frame;
            };
            match corrupt_fetch(&frame, version, shared.started.elapsed().subsec_nanos()) {
                Some((corrupted, at)) => {
                    shared.counters.corrupted.fetch_add(1, Ordering::Relaxed);
                    shared.log(format!(
                        "{}: flipped byte {} of a Fetch v{version} response ({:?})",
                        shared.name, at.frame_offset, at
                    ));
                    if mode == Corruption::Once {
                        shared.log(format!("{}: set pass (corrupt once done)", shared.name));
                        shared.fault.send_replace(Fault::Pass);
                    }
                    corrupted
                }
                None => frame,
            }
        }
        _ => frame,
    }
}

/// Decodes a response frame (size prefix included) of `key`/`version`, rewrites broker ports
/// found in `map`, re-encodes it.
pub fn rewrite_ports(
    frame: &[u8],
    key: ApiKey,
    version: i16,
    map: &HashMap<i32, i32>,
) -> Option<Bytes> {
    let mut body = Bytes::copy_from_slice(frame.get(4..)?);
    let header_version = key.response_header_version(version);
    let header = ResponseHeader::decode(&mut body, header_version).ok()?;
    let remap = |port: &mut i32| {
        if let Some(&p) = map.get(port) {
            *port = p;
        }
    };
    let mut out = BytesMut::new();
    out.extend_from_slice(&[0; 4]);
    header.encode(&mut out, header_version).ok()?;
    match key {
        ApiKey::Metadata => {
            let mut resp = MetadataResponse::decode(&mut body, version).ok()?;
            resp.brokers.iter_mut().for_each(|b| remap(&mut b.port));
            resp.encode(&mut out, version).ok()?;
        }
        ApiKey::FindCoordinator => {
            let mut resp = FindCoordinatorResponse::decode(&mut body, version).ok()?;
            remap(&mut resp.port);
            resp.coordinators
                .iter_mut()
                .for_each(|c| remap(&mut c.port));
            resp.encode(&mut out, version).ok()?;
        }
        ApiKey::DescribeCluster => {
            let mut resp = DescribeClusterResponse::decode(&mut body, version).ok()?;
            resp.brokers.iter_mut().for_each(|b| remap(&mut b.port));
            resp.encode(&mut out, version).ok()?;
        }
        _ => return None,
    }
    if !body.is_empty() {
        return None;
    }
    let len = i32::try_from(out.len() - 4).ok()?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Some(out.freeze())
}

/// Where [`corrupt_fetch`] flipped a byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptionSite {
    /// Topic (name, or the topic id for Fetch v13+).
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Base offset of the batch that holds the byte.
    pub base_offset: i64,
    /// Offset of the byte in the frame (size prefix included).
    pub frame_offset: usize,
}

/// Flips one byte in the payload (after the 61-byte header) of the first record batch of the
/// first partition with records in a Fetch response frame (size prefix included). `salt` picks
/// the byte. `None` when the response holds no complete batch.
pub fn corrupt_fetch(frame: &[u8], version: i16, salt: u32) -> Option<(Bytes, CorruptionSite)> {
    let whole = Bytes::copy_from_slice(frame);
    let mut body = whole.slice(4..);
    let header_version = ApiKey::Fetch.response_header_version(version);
    ResponseHeader::decode(&mut body, header_version).ok()?;
    let resp = FetchResponse::decode(&mut body, version).ok()?;
    for t in &resp.responses {
        for p in &t.partitions {
            let Some(records) = &p.records else { continue };
            let (Some(len), Some(base)) = (peek_i32(records, 8), records.get(0..8)) else {
                continue;
            };
            let entry = usize::try_from(len).ok()?.checked_add(12)?;
            if entry > records.len() || entry <= BATCH_HEADER {
                continue;
            }
            // `records` is a zero-copy slice of `whole` (kafka-protocol decodes Bytes fields
            // with `split_to`), so its address gives its position in the frame.
            let start = (records.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
            let payload = entry - BATCH_HEADER;
            let at = start + BATCH_HEADER + (salt as usize % payload);
            let mut out = BytesMut::from(frame);
            *out.get_mut(at)? ^= 0x5a;
            let topic = if t.topic.is_empty() {
                t.topic_id.to_string()
            } else {
                t.topic.to_string()
            };
            return Some((
                out.freeze(),
                CorruptionSite {
                    topic,
                    partition: p.partition_index,
                    base_offset: i64::from_be_bytes(base.try_into().ok()?),
                    frame_offset: at,
                },
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn frame_of<R: Encodable>(key: ApiKey, version: i16, corr: i32, resp: &R) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(corr)
            .encode(&mut out, key.response_header_version(version))
            .unwrap();
        resp.encode(&mut out, version).unwrap();
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        out.freeze()
    }

    fn decode_body<R: Decodable>(frame: &[u8], key: ApiKey, version: i16) -> (i32, R) {
        let mut body = Bytes::copy_from_slice(&frame[4..]);
        let h = ResponseHeader::decode(&mut body, key.response_header_version(version)).unwrap();
        let r = R::decode(&mut body, version).unwrap();
        assert!(body.is_empty());
        (h.correlation_id, r)
    }

    #[test]
    fn metadata_ports_are_rewritten_in_every_version() {
        for version in [1i16, 9, 12, 13] {
            let resp = MetadataResponse::default().with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(9092),
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(2))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(7777),
            ]);
            let frame = frame_of(ApiKey::Metadata, version, 42, &resp);
            let map = HashMap::from([(9092, 19092)]);
            let out = rewrite_ports(&frame, ApiKey::Metadata, version, &map).unwrap();
            let (corr, back): (_, MetadataResponse) = decode_body(&out, ApiKey::Metadata, version);
            assert_eq!(corr, 42);
            let ports: Vec<i32> = back.brokers.iter().map(|b| b.port).collect();
            assert_eq!(ports, [19092, 7777], "v{version}");
            assert_eq!(back.brokers[0].host.as_str(), "127.0.0.1");
            let len = i32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
            assert_eq!(len + 4, out.len());
        }
    }

    #[test]
    fn find_coordinator_ports_are_rewritten_old_and_new_shapes() {
        let map = HashMap::from([(9092, 1)]);
        let old = FindCoordinatorResponse::default()
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(9092);
        let out = rewrite_ports(
            &frame_of(ApiKey::FindCoordinator, 2, 7, &old),
            ApiKey::FindCoordinator,
            2,
            &map,
        )
        .unwrap();
        let (_, back): (_, FindCoordinatorResponse) = decode_body(&out, ApiKey::FindCoordinator, 2);
        assert_eq!(back.port, 1);
        let new = FindCoordinatorResponse::default().with_coordinators(vec![
            Coordinator::default()
                .with_key(StrBytes::from_static_str("g"))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(9092),
        ]);
        let out = rewrite_ports(
            &frame_of(ApiKey::FindCoordinator, 4, 7, &new),
            ApiKey::FindCoordinator,
            4,
            &map,
        )
        .unwrap();
        let (_, back): (_, FindCoordinatorResponse) = decode_body(&out, ApiKey::FindCoordinator, 4);
        assert_eq!(back.coordinators[0].port, 1);
    }

    #[test]
    fn garbage_is_not_rewritten() {
        let map = HashMap::from([(9092, 1)]);
        assert!(rewrite_ports(&[0, 0, 0, 3, 1, 2, 3], ApiKey::Metadata, 12, &map).is_none());
        assert!(corrupt_fetch(&[0, 0, 0, 1, 9], 12, 0).is_none());
    }

    /// A real v2 batch of `n` records (built with ferry-protocol).
    fn batch(n: usize) -> Bytes {
        use ferry_protocol::batch::Attributes;
        use ferry_protocol::record::{Record, encode_parts, producer_header};
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                offset_delta: i as i32,
                value: Some(Bytes::from(format!("value-{i}"))),
                ..Record::default()
            })
            .collect();
        let mut header = producer_header(1_700_000_000_000, Attributes(0), &records);
        header.base_offset = 100;
        let (prefix, payload) = encode_parts(&header, &records).unwrap();
        let mut b = BytesMut::new();
        b.extend_from_slice(&prefix);
        b.extend_from_slice(&payload);
        b.freeze()
    }

    #[test]
    fn corrupt_fetch_flips_one_payload_byte_that_only_the_crc_catches() {
        use ferry_protocol::batch::RecordBatch;
        let records = batch(5);
        for version in [4i16, 11, 12, 13, 16] {
            let resp = FetchResponse::default().with_responses(vec![
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![
                        PartitionData::default().with_partition_index(0),
                        PartitionData::default()
                            .with_partition_index(3)
                            .with_records(Some(records.clone())),
                    ]),
            ]);
            let frame = frame_of(ApiKey::Fetch, version, 9, &resp);
            for salt in [0u32, 1, 17, 12345] {
                let (out, site) = corrupt_fetch(&frame, version, salt).unwrap();
                assert_eq!(site.partition, 3);
                assert_eq!(site.base_offset, 100);
                assert_eq!(out.len(), frame.len());
                let diff: Vec<usize> = (0..frame.len()).filter(|&i| frame[i] != out[i]).collect();
                assert_eq!(diff, [site.frame_offset], "v{version} salt {salt}");
                let (_, back): (_, FetchResponse) = decode_body(&out, ApiKey::Fetch, version);
                let got = back.responses[0].partitions[1].records.clone().unwrap();
                // The header is intact; the CRC no longer matches.
                assert_eq!(got[..BATCH_HEADER], records[..BATCH_HEADER]);
                let b = RecordBatch::new(got).unwrap();
                assert!(b.verify_crc().is_err(), "v{version} salt {salt}");
                assert!(
                    RecordBatch::new(records.clone())
                        .unwrap()
                        .verify_crc()
                        .is_ok()
                );
            }
        }
    }

    #[test]
    fn request_header_is_read() {
        let mut f = BytesMut::new();
        f.put_i32(10);
        f.put_i16(1);
        f.put_i16(13);
        f.put_i32(77);
        f.put_i16(0);
        assert_eq!(request_header(&f), Some((1, 13, 77)));
        assert_eq!(request_header(&f[..9]), None);
    }

    /// End to end on loopback against a tiny echo "broker": frames are relayed, CutAfter cuts
    /// mid-frame with a reset, Blackhole holds, healing resumes.
    #[test]
    fn relays_cuts_and_blackholes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Echo server: echoes whatever it reads.
            let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let echo_addr = echo.local_addr().unwrap();
            tokio::spawn(async move {
                loop {
                    let (mut s, _) = echo.accept().await.unwrap();
                    tokio::spawn(async move {
                        let mut buf = BytesMut::with_capacity(4096);
                        loop {
                            buf.clear();
                            match s.read_buf(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            if s.write_all(&buf).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            let proxy = FaultProxy::start("t", &echo_addr.to_string()).unwrap();
            let frame = |corr: i32| {
                let mut f = BytesMut::new();
                f.put_i32(12);
                f.put_i16(18);
                f.put_i16(3);
                f.put_i32(corr);
                f.put_i32(0);
                f.freeze()
            };
            let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
            c.write_all(&frame(1)).await.unwrap();
            let mut back = [0u8; 16];
            c.read_exact(&mut back).await.unwrap();
            assert_eq!(&back[..], &frame(1)[..]);
            assert_eq!(proxy.requests(ApiKey::ApiVersions), 1);

            // Blackhole: nothing comes back within 300 ms; after heal it does.
            proxy.set(Fault::Blackhole);
            c.write_all(&frame(2)).await.unwrap();
            let r = tokio::time::timeout(Duration::from_millis(300), c.read_exact(&mut back)).await;
            assert!(r.is_err(), "blackholed frame came back");
            proxy.heal();
            tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut back))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&back[..], &frame(2)[..]);

            // CutAfter(20): 16 bytes up, then 4 of the 16 down, then RST.
            proxy.set(Fault::CutAfter(20));
            c.write_all(&frame(3)).await.unwrap();
            let mut got = BytesMut::new();
            let mut buf = BytesMut::with_capacity(64);
            loop {
                buf.clear();
                match c.read_buf(&mut buf).await {
                    Ok(0) => break,
                    Ok(_) => got.extend_from_slice(&buf),
                    Err(e) => {
                        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
                        break;
                    }
                }
            }
            assert_eq!(&got[..], &frame(3)[..4]);
            assert!(
                proxy
                    .timeline_text()
                    .contains("cut a connection after 20 bytes")
            );

            // Reset: a new connection is reset at once.
            proxy.set(Fault::Reset);
            // The RST may already arrive during connect.
            if let Ok(mut c) = TcpStream::connect(proxy.addr()).await {
                let _ = c.write_all(&frame(4)).await;
                buf.clear();
                let r = c.read_buf(&mut buf).await;
                assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
            }
            proxy.heal();
            let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
            c.write_all(&frame(5)).await.unwrap();
            c.read_exact(&mut back).await.unwrap();
            assert_eq!(&back[..], &frame(5)[..]);
            assert!(proxy.connections() >= 3);
        });
    }
}
