//! The daemon's TCP listener, shared with the process that replaces it.
//!
//! The socket is bound with `SO_REUSEPORT`, so a new process can listen on the same port while
//! the old one still serves. The kernel spreads new connections over every socket of such a
//! group, and a connection queued on a socket that is then closed is reset. So the newest
//! process also attaches a classic-BPF steering program to the group that sends every new
//! connection to the socket that joined second — its own, while an old process is still
//! there. The old process then only has to serve the connections it already accepted before
//! it closes its socket; once it has, the index is out of range and the kernel falls back to
//! its usual hashing over the one socket left.

use std::net::SocketAddr;

/// Bind `addr` with `SO_REUSEPORT` and steer new connections to this socket when it joins a
/// group that has one older socket.
pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    if let Err(e) = steer_to_second(&socket) {
        tracing::warn!(error = %e, "could not attach the connection-steering program; a hand-over may reset connections queued on the old process");
    }
    socket.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// `SO_ATTACH_REUSEPORT_CBPF` with the one-instruction program `ret #1`.
fn steer_to_second(socket: &socket2::Socket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    const BPF_RET_K: u16 = 0x06;
    let mut program = [libc::sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: 1,
    }];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at a valid one-instruction program for the duration of the call;
    // the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
