//! clamd for tests: the shared instance `scripts/test` started
//! (`CHAT_MEDIA_TEST_CLAMD`), and private instances a test starts, stops and
//! restarts itself (other limits, a Unix socket, an outage).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chat_media::scan::{ClamdAddress, Scanner};
use tokio::process::{Child, Command};

/// The EICAR anti-virus test string, in two halves so this file is not itself
/// detected by scanners on developer machines.
pub fn eicar() -> Vec<u8> {
    let mut v = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$".to_vec();
    v.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
    v
}

/// The name clamd reports for our signature (`.UNOFFICIAL`: not from ClamAV's databases).
pub const EICAR_SIGNATURE: &str = "ChatMedia.Test.EICAR.UNOFFICIAL";

/// The shared clamd that scripts/test started (StreamMaxLength 200M).
pub fn shared_scanner() -> Scanner {
    let address = std::env::var("CHAT_MEDIA_TEST_CLAMD").unwrap_or_else(|_| {
        panic!("CHAT_MEDIA_TEST_CLAMD is not set: run the tests through scripts/test, which starts clamd")
    });
    Scanner::new(address.parse().expect("CHAT_MEDIA_TEST_CLAMD is host:port"))
        .with_timeouts(Duration::from_secs(5), Duration::from_secs(120))
}

fn clamd_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("CHAT_MEDIA_TEST_CLAMD_BIN") {
        if !bin.is_empty() {
            return bin.into();
        }
    }
    ["/usr/sbin/clamd", "/usr/local/sbin/clamd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| "clamd".into())
}

/// Limits of a private clamd; the defaults match scripts/lib.sh's start_clamd.
#[derive(Debug, Clone)]
pub struct ClamdOptions {
    pub stream_max_length: String,
    pub max_file_size: String,
}

impl Default for ClamdOptions {
    fn default() -> Self {
        Self {
            stream_max_length: "200M".into(),
            max_file_size: "200M".into(),
        }
    }
}

/// A clamd process of one test's own, on 127.0.0.1:`port` and a Unix socket.
/// Killed (by its PID) and its directory removed on drop.
pub struct Clamd {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Clamd {
    pub async fn start(options: ClamdOptions) -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir =
            std::env::temp_dir().join(format!("chat-media-clamd-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let hex: String = eicar().iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(
            dir.join("chat-media-test.ndb"),
            format!("ChatMedia.Test.EICAR:0:*:{hex}\n"),
        )
        .unwrap();
        let d = dir.display();
        let conf = format!(
            "TCPAddr 127.0.0.1\nTCPSocket {port}\nLocalSocket {d}/clamd.sock\n\
             Foreground yes\nDatabaseDirectory {d}\nTemporaryDirectory {d}/tmp\n\
             PidFile {d}/clamd.pid\nLogFile {d}/clamd.log\n\
             StreamMaxLength {}\nMaxFileSize {}\nMaxScanSize 400M\nAlertExceedsMax yes\n\
             ConcurrentDatabaseReload no\n",
            options.stream_max_length, options.max_file_size
        );
        std::fs::write(dir.join("clamd.conf"), conf).unwrap();
        let mut clamd = Self {
            port,
            dir,
            child: None,
        };
        clamd.restart().await;
        clamd
    }

    /// Starts the process again (same port, config and socket) and waits for PONG.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "clamd is already running");
        let child = Command::new(clamd_bin())
            .arg(format!(
                "--config-file={}",
                self.dir.join("clamd.conf").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("clamd runs (scripts/test installs clamav-daemon)");
        self.child = Some(child);
        let probe = self
            .scanner()
            .with_timeouts(Duration::from_millis(500), Duration::from_secs(2));
        for _ in 0..600 {
            if probe.ping().await.is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("clamd exited with {status}; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clamd did not answer PING; log:\n{}", self.log());
    }

    /// Stops the process (SIGKILL by PID) and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    pub fn address(&self) -> ClamdAddress {
        ClamdAddress::Tcp(format!("127.0.0.1:{}", self.port))
    }

    pub fn unix_socket(&self) -> PathBuf {
        self.dir.join("clamd.sock")
    }

    /// A scanner for this clamd over TCP, with test timeouts.
    pub fn scanner(&self) -> Scanner {
        Scanner::new(self.address()).with_timeouts(Duration::from_secs(5), Duration::from_secs(120))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("clamd.log")).unwrap_or_default()
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Raw DEFLATE with one fixed-Huffman block of literals only: real compression
/// format (clamd must inflate it), no compressor crate needed.
pub fn deflate_fixed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut nbits) = (0u32, 0u32);
    let mut put = |value: u32, bits: u32, out: &mut Vec<u8>| {
        acc |= value << nbits;
        nbits += bits;
        while nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    };
    // Huffman codes go most significant bit first.
    let code = |c: u32, len: u32| c.reverse_bits() >> (32 - len);
    put(1, 1, &mut out); // BFINAL
    put(1, 2, &mut out); // BTYPE = 01, fixed Huffman
    for &b in data {
        let b = u32::from(b);
        if b < 144 {
            put(code(0x30 + b, 8), 8, &mut out);
        } else {
            put(code(0x190 + b - 144, 9), 9, &mut out);
        }
    }
    put(0, 7, &mut out); // end of block (256)
    put(0, 7, &mut out); // flush the last partial byte
    out
}

/// A zip archive holding one file, stored or deflated.
pub fn zip_one(name: &str, content: &[u8], deflate: bool) -> Vec<u8> {
    let (method, data) = if deflate {
        (8u16, deflate_fixed(content))
    } else {
        (0u16, content.to_vec())
    };
    let crc = crc32(content);
    let mut zip = Vec::new();
    let header = |sig: u32, central: bool| {
        let mut h = Vec::new();
        h.extend_from_slice(&sig.to_le_bytes());
        if central {
            h.extend_from_slice(&20u16.to_le_bytes()); // version made by
        }
        h.extend_from_slice(&20u16.to_le_bytes()); // version needed
        h.extend_from_slice(&0u16.to_le_bytes()); // flags
        h.extend_from_slice(&method.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes()); // time
        h.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
        h.extend_from_slice(&crc.to_le_bytes());
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        h.extend_from_slice(&(content.len() as u32).to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes()); // extra length
        if central {
            h.extend_from_slice(&0u16.to_le_bytes()); // comment length
            h.extend_from_slice(&0u16.to_le_bytes()); // disk
            h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            h.extend_from_slice(&0u32.to_le_bytes()); // local header offset
        }
        h.extend_from_slice(name.as_bytes());
        h
    };
    zip.extend(header(0x0403_4b50, false));
    zip.extend_from_slice(&data);
    let central_offset = zip.len() as u32;
    let central = header(0x0201_4b50, true);
    zip.extend_from_slice(&central);
    zip.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    zip.extend_from_slice(&[0, 0, 0, 0]); // disk numbers
    zip.extend_from_slice(&1u16.to_le_bytes());
    zip.extend_from_slice(&1u16.to_le_bytes());
    zip.extend_from_slice(&(central.len() as u32).to_le_bytes());
    zip.extend_from_slice(&central_offset.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes()); // comment length
    zip
}
