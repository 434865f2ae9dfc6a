//! A TCP proxy that adds a fixed one-way delay in each direction, to measure notarium against a registry at
//! a real network's round-trip time without root (`tc netem` needs it): `--delay-ms 10` puts 20 ms of
//! round-trip time between a client and the upstream. Bytes keep their order and are never held longer
//! than the delay; bandwidth is not limited.
//!
//! cargo run --release --example delay_proxy -- --listen 127.0.0.1:5001 --upstream 127.0.0.1:5000 --delay-ms 10
// A measuring harness, not the service: any failure should stop the run at once.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Parser)]
struct Args {
    /// Address to accept clients on.
    #[arg(long)]
    listen: String,
    /// Address every client connection is forwarded to.
    #[arg(long)]
    upstream: String,
    /// Delay added to every byte in each direction (the round trip grows by twice this).
    #[arg(long, default_value_t = 10)]
    delay_ms: u64,
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn delayed_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buffer = vec![0; 64 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send((Instant::now() + delay, buffer[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn serve(client: TcpStream, upstream: String, delay: Duration) {
    let Ok(server) = TcpStream::connect(&upstream).await else { return };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    // The connection itself takes one round trip.
    tokio::time::sleep(delay * 2).await;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(delayed_copy(client_read, server_write, delay), delayed_copy(server_read, client_write, delay));
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let delay = Duration::from_millis(args.delay_ms);
    let listener = TcpListener::bind(&args.listen).await.unwrap();
    loop {
        let (client, _) = listener.accept().await.unwrap();
        tokio::spawn(serve(client, args.upstream.clone(), delay));
    }
}
