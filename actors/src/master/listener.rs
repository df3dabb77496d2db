//! Accepting connections: the TCP port (plain or TLS) and the Unix socket
//! for local clients. Each accepted stream becomes a [`Session`]; nothing a
//! peer sends reaches the master before the session's handshake.
//!
//! Two bounds apply before a session exists, so a flood costs little: the
//! connections one source address may hold (`--max-connections-per-ip`),
//! counted here, and the time a TLS handshake may take (the session's
//! handshake timeout). A connection refused here is closed without a TLS
//! handshake: refusing must be cheaper than accepting.

use super::Master;
use crate::owner_files::name_of;
use crate::session::{Session, SessionSettings};
use crate::tls::ServerTls;
use crate::transport::{Conn, Peer};
use actix::Addr;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UnixListener};

/// How many connections each source address holds.
pub struct AddrCounts {
    per_ip: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's count, given back on drop.
pub struct AddrSlot {
    counts: Arc<AddrCounts>,
    ip: IpAddr,
}

impl AddrCounts {
    /// `per_ip` 0: no bound.
    pub fn new(per_ip: usize) -> Arc<AddrCounts> {
        Arc::new(AddrCounts {
            per_ip,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, or `None` if it holds its
    /// share already.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddrSlot> {
        if self.per_ip == 0 {
            return Some(AddrSlot {
                counts: self.clone(),
                ip,
            });
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            return None;
        }
        *n += 1;
        Some(AddrSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        if self.counts.per_ip == 0 {
            return;
        }
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Accepts on the TCP port until the process ends.
pub(super) async fn serve_tcp(
    listener: TcpListener,
    tls: Option<ServerTls>,
    per_ip: usize,
    master: Addr<Master>,
    settings: SessionSettings,
) {
    let counts = AddrCounts::new(per_ip);
    let mut refused_logged = tokio::time::Instant::now() - Duration::from_secs(60);
    loop {
        let (tcp, from) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = counts.take(from.ip()) else {
            // Logged at most every 10 s: a flood must not flood the log.
            if refused_logged.elapsed() >= Duration::from_secs(10) {
                refused_logged = tokio::time::Instant::now();
                tracing::warn!(
                    peer = %from,
                    "refusing connections from {}: it holds --max-connections-per-ip ({per_ip}) already",
                    from.ip()
                );
            }
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let peer = Peer::Net(from.to_string());
        match &tls {
            None => Session::start(
                Conn::Tcp(tcp),
                peer,
                Some(slot),
                master.clone(),
                settings.clone(),
            ),
            Some(tls) => {
                let (acceptor, m, s) = (tls.acceptor.clone(), master.clone(), settings.clone());
                actix::spawn(async move {
                    match accept_tls(acceptor, tcp, s.handshake_timeout).await {
                        Ok(conn) => Session::start(conn, peer, Some(slot), m, s),
                        Err(e) => tracing::info!(%peer, "closing connection: {e}"),
                    }
                });
            }
        }
    }
}

async fn accept_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<Conn, String> {
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Ok(Conn::Tls(Box::new(tokio_rustls::TlsStream::Server(s)))),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err(format!(
            "TLS handshake not completed within {:.1} s",
            timeout.as_secs_f64()
        )),
    }
}

/// Binds the Unix socket at `path`, open to every local user (the kernel
/// tells the master who each one is). A socket left by a master that died
/// is replaced; one a live master answers on is not.
pub(super) fn bind_unix(path: &Path) -> Result<UnixListener, String> {
    let meta = std::fs::symlink_metadata(path);
    if let Ok(m) = &meta {
        use std::os::unix::fs::FileTypeExt;
        if !m.file_type().is_socket() {
            return Err(format!(
                "cannot listen on {}: it exists and is not a socket",
                path.display()
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "cannot listen on {}: another process is listening on it",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot replace stale socket {}: {e}", path.display()))?;
    }
    let l = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| format!("cannot open {} to local users: {e}", path.display()))?;
    Ok(l)
}

/// Accepts on the Unix socket until the process ends.
pub(super) async fn serve_unix(
    listener: UnixListener,
    path: PathBuf,
    master: Addr<Master>,
    settings: SessionSettings,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(socket = %path.display(), "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let uid = match stream.peer_cred() {
            Ok(c) => c.uid(),
            Err(e) => {
                tracing::warn!(socket = %path.display(), "cannot learn a local peer's uid: {e}");
                continue;
            }
        };
        let peer = Peer::Local {
            uid,
            user: name_of(uid),
        };
        Session::start(
            Conn::Unix(stream),
            peer,
            None,
            master.clone(),
            settings.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_its_share_until_a_connection_ends() {
        let counts = AddrCounts::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = counts.take(a).unwrap();
        let _s2 = counts.take(a).unwrap();
        assert!(counts.take(a).is_none());
        assert!(
            counts.take(b).is_some(),
            "another address has its own share"
        );
        drop(s1);
        assert!(counts.take(a).is_some());
        let unbounded = AddrCounts::new(0);
        let slots: Vec<_> = (0..10_000).filter_map(|_| unbounded.take(a)).collect();
        assert_eq!(slots.len(), 10_000);
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let e = bind_unix(&file).unwrap_err();
        assert!(e.contains("not a socket"), "{e}");
        let sock = dir.path().join("s");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let live = bind_unix(&sock).expect("a dead master's socket is replaced");
            let e = bind_unix(&sock).unwrap_err();
            assert!(e.contains("another process"), "{e}");
            drop(live);
        });
    }
}
