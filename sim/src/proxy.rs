//! A TCP relay between a foreman and the master, so that the simulation can
//! cut the foreman off (`--partition-foreman`) without touching the
//! machine's network: while partitioned, its connections are closed and new
//! ones are dropped as soon as they are accepted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Relay {
    pub addr: String,
    partitioned: Arc<AtomicBool>,
    /// Cancelled to close every relayed connection at once.
    links: Arc<Mutex<CancellationToken>>,
}

impl Relay {
    /// Listens on a free loopback port and relays to `upstream`.
    pub async fn start(upstream: String, stop: CancellationToken) -> std::io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let relay = Relay {
            addr: listener.local_addr()?.to_string(),
            partitioned: Arc::new(AtomicBool::new(false)),
            links: Arc::new(Mutex::new(CancellationToken::new())),
        };
        let r = relay.clone();
        tokio::spawn(async move {
            loop {
                let (inbound, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    a = listener.accept() => match a {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                };
                // The flag is read under the lock `partition` takes, so a
                // connection accepted during a cut never slips through it.
                let cut = {
                    let links = r.links.lock().unwrap_or_else(|p| p.into_inner());
                    if r.partitioned.load(Ordering::SeqCst) {
                        None
                    } else {
                        Some(links.clone())
                    }
                };
                let Some(cut) = cut else {
                    drop(inbound);
                    continue;
                };
                let up = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&up).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    tokio::select! {
                        _ = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Ok(relay)
    }

    /// Cuts every relayed connection and refuses new ones until [`heal`].
    pub fn partition(&self) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        self.partitioned.store(true, Ordering::SeqCst);
        links.cancel();
        *links = CancellationToken::new();
    }

    pub fn heal(&self) {
        self.partitioned.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn relays_and_cuts() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = echo.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let stop = CancellationToken::new();
        let relay = Relay::start(echo_addr, stop.clone()).await.unwrap();
        let mut c = TcpStream::connect(&relay.addr).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");

        relay.partition();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), c.read_to_end(&mut rest))
            .await
            .expect("the cut connection closes")
            .unwrap_or(0);
        assert_eq!(n, 0);
        let mut c2 = TcpStream::connect(&relay.addr).await.unwrap();
        let _ = c2.write_all(b"x").await;
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), c2.read(&mut b))
            .await
            .expect("a connection during the partition is dropped")
            .unwrap_or(0);
        assert_eq!(n, 0);

        relay.heal();
        let mut c3 = TcpStream::connect(&relay.addr).await.unwrap();
        c3.write_all(b"pong").await.unwrap();
        c3.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"pong");
        stop.cancel();
    }
}
