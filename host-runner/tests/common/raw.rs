//! A WebSocket client on a plain socket, speaking frames byte by byte.

use std::io::{Read, Write};
use std::net::TcpStream;

use super::Runner;

/// A WebSocket client on a plain socket, for peers that misbehave in ways tungstenite does
/// not (ignoring a close frame, pipelining past a limit, not reading).
pub struct RawClient {
    pub stream: TcpStream,
    input: Vec<u8>,
}

/// A frame from the runner: opcode and payload.
pub type Frame = (u8, Vec<u8>);

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;

impl Runner {
    /// Upgrades a plain socket on `path`.
    pub fn connect_raw(&self, path: &str) -> RawClient {
        self.connect_raw_on(TcpStream::connect(self.addr).expect("connect"), path)
    }

    /// Upgrades the connected `stream` on `path`.
    pub fn connect_raw_on(&self, stream: TcpStream, path: &str) -> RawClient {
        let (head, stream) = self.upgrade_head_on(stream, path, &[]);
        assert!(head.starts_with("http/1.1 101"), "{head}");
        RawClient::on(stream)
    }
}

impl RawClient {
    /// A client on a stream that has already been upgraded.
    pub fn on(stream: TcpStream) -> RawClient {
        RawClient {
            stream,
            input: Vec::new(),
        }
    }

    /// One masked frame with FIN set.
    pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            len @ 0..=125 => frame.push(0x80 | len as u8),
            len @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    pub fn send(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(&Self::frame(opcode, payload))
    }

    /// The next frame; `Ok(None)` when the runner closed the connection.
    pub fn read_frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.input) {
                self.input.drain(..used);
                return Ok(Some(frame));
            }
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf)? {
                0 => return Ok(None),
                n => self.input.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Every frame until the runner closes the connection.
    pub fn read_to_end(&mut self) -> std::io::Result<Vec<Frame>> {
        let mut frames = Vec::new();
        while let Some(frame) = self.read_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }
}

/// The close code in a close frame's payload.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]))
}

/// An unmasked frame at the start of `data`, and its length; `None` if incomplete.
fn parse_server_frame(data: &[u8]) -> Option<(Frame, usize)> {
    let opcode = data.first()? & 0x0f;
    let (len, start): (usize, usize) = match data.get(1)? & 0x7f {
        126 => (
            u16::from_be_bytes([*data.get(2)?, *data.get(3)?]) as usize,
            4,
        ),
        127 => {
            let bytes: [u8; 8] = data.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(bytes)).ok()?, 10)
        }
        len => (usize::from(len), 2),
    };
    let payload = data.get(start..start.checked_add(len)?)?;
    Some(((opcode, payload.to_vec()), start + len))
}
