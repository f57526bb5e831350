//! A TCP proxy in front of PostgreSQL that counts round trips.
//!
//! A round trip is the client sending after the server last spoke (or for the first time):
//! the PostgreSQL protocol is request/response, so every change of direction from server to
//! client back to client to server is one wait for the network. Counting this at the socket
//! sees exactly what a function pays in latency, whatever the statements are.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

#[derive(Clone)]
pub struct RoundTrips {
    pub addr: SocketAddr,
    count: Arc<AtomicU64>,
}

const CLIENT: u8 = 1;
const SERVER: u8 = 2;

impl RoundTrips {
    /// Listens on a loopback port and forwards every connection to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, counter) = (upstream.clone(), counter.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        pipe(client, server, counter).await;
                    }
                });
            }
        });
        Ok(Self { addr, count })
    }

    /// Round trips since the start (or the last `reset`).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
    }
}

async fn pipe(client: TcpStream, server: TcpStream, count: Arc<AtomicU64>) {
    let last = Arc::new(AtomicU8::new(SERVER));
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up_last = last.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if up_last.swap(CLIENT, Ordering::SeqCst) == SERVER {
                count.fetch_add(1, Ordering::SeqCst);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            last.store(SERVER, Ordering::SeqCst);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}
