//! A TCP proxy in front of a server for client tests: `pause` cuts every connection and
//! refuses new ones, `stall` keeps them open but forwards nothing (a hung server).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A TCP proxy in front of a server: `pause` cuts every connection and refuses new ones
/// (they are accepted and closed at once) until `resume`.
pub struct Proxy {
    port: u16,
    paused: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free port and forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        let paused = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (p, s, c, st) = (paused.clone(), stop.clone(), conns.clone(), stalled.clone());
        let thread = std::thread::spawn(move || {
            for incoming in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(down) = incoming else { continue };
                if p.load(Ordering::SeqCst) {
                    let _ = down.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = down.shutdown(Shutdown::Both);
                    continue;
                };
                let mut list = c.lock().expect("proxy lock");
                for sock in [&down, &up] {
                    if let Ok(clone) = sock.try_clone() {
                        list.push(clone);
                    }
                }
                drop(list);
                pipe(&down, &up, st.clone());
                pipe(&up, &down, st.clone());
            }
        });
        Proxy { port, paused, stalled, stop, conns, thread: Some(thread) }
    }

    /// `127.0.0.1:port` of the proxy.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Cuts all connections and refuses new ones.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        for s in self.conns.lock().expect("proxy lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Keeps connections open but silently drops everything in both directions (a hung
    /// server), until `unstall`.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn unstall(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.pause();
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pipe(from: &TcpStream, to: &TcpStream, stalled: Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if stalled.load(Ordering::SeqCst) => {}
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
