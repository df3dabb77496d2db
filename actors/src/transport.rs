//! The byte streams pilotq's frames travel on: plain TCP, TCP inside TLS,
//! or a Unix socket for clients on the master's own host.
//!
//! One type for all three, so that the handshake, the session and the
//! outbox do not care which it is. Plain TCP and Unix sockets split into
//! owned halves with no lock between them; a TLS stream shares one state
//! machine between reading and writing, so its halves share it through
//! `tokio::io::split`.

use crate::tls::ClientTls;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

pub type BoxRead = Box<dyn AsyncRead + Unpin + Send>;
pub type BoxWrite = Box<dyn AsyncWrite + Unpin + Send>;

/// An address a client may give: `unix:PATH` for the master's Unix socket,
/// else `HOST:PORT`.
pub fn unix_path(addr: &str) -> Option<&str> {
    addr.strip_prefix("unix:")
}

pub enum Conn {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
    Unix(UnixStream),
}

/// Who is at the other end, as far as the transport can tell.
#[derive(Debug, Clone)]
pub enum Peer {
    /// An address on the network (over TLS or not).
    Net(String),
    /// A process on this host, on the Unix socket: the kernel's word for its
    /// user (`SO_PEERCRED`), not a claim.
    Local { uid: u32, user: Option<String> },
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Net(a) => f.write_str(a),
            Peer::Local { uid, user: Some(u) } => write!(f, "local user {u} (uid {uid})"),
            Peer::Local { uid, user: None } => write!(f, "local uid {uid}"),
        }
    }
}

/// Why [`Conn::dial`] failed: no connection, or no TLS on it.
#[derive(Debug)]
pub enum DialError {
    Connect(io::Error),
    Tls(String),
}

impl Conn {
    /// Connects to `addr` (`unix:PATH` or `HOST:PORT`), inside TLS when
    /// `tls` is given (never for a Unix socket: the kernel carries it).
    pub async fn dial(addr: &str, tls: Option<&ClientTls>) -> Result<Conn, DialError> {
        if let Some(path) = unix_path(addr) {
            let s = UnixStream::connect(path)
                .await
                .map_err(DialError::Connect)?;
            return Ok(Conn::Unix(s));
        }
        let tcp = TcpStream::connect(addr).await.map_err(DialError::Connect)?;
        let _ = tcp.set_nodelay(true);
        match tls {
            None => Ok(Conn::Tcp(tcp)),
            Some(tls) => {
                let name =
                    ClientTls::server_name(addr).map_err(|e| DialError::Tls(e.to_string()))?;
                let s = tls.connector.connect(name, tcp).await.map_err(|e| {
                    // A plain master answers a ClientHello with an Error
                    // frame, which rustls reads as a corrupt record.
                    let corrupt = e
                        .get_ref()
                        .and_then(|i| i.downcast_ref::<rustls::Error>())
                        .is_some_and(|r| matches!(r, rustls::Error::InvalidMessage(_)));
                    let hint = if corrupt {
                        " (does the master serve TLS? it needs --tls-cert and --tls-key)"
                    } else {
                        ""
                    };
                    DialError::Tls(format!("{e}{hint}"))
                })?;
                Ok(Conn::Tls(Box::new(tokio_rustls::TlsStream::Client(s))))
            }
        }
    }

    pub fn into_split(self) -> (BoxRead, BoxWrite) {
        match self {
            Conn::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Conn::Unix(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Conn::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(r), Box::new(w))
            }
        }
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Conn::Tcp($s) => $e,
            Conn::Tls($s) => $e,
            Conn::Unix($s) => $e,
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Tcp(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
            Conn::Unix(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_unix_address_connects_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let addr = format!("unix:{}", path.display());
        let (c, a) = tokio::join!(Conn::dial(&addr, None), l.accept());
        assert!(matches!(c.unwrap(), Conn::Unix(_)));
        let (s, _) = a.unwrap();
        // SAFETY: getuid has no preconditions.
        assert_eq!(s.peer_cred().unwrap().uid(), unsafe { libc::getuid() });
    }
}
