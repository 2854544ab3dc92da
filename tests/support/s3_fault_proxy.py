#!/usr/bin/env python3
"""An HTTP/1.1 proxy between an S3 client and radosgw that injects faults into chosen requests.

Usage: s3_fault_proxy.py --port-file FILE --target HOST:PORT --plan FAULTS [--match TEXT] [--stall-seconds S]
                         [--log FILE]
Listens on 127.0.0.1 on a free port (written to --port-file atomically once listening) and forwards each
request verbatim (the Host header included, so SigV4 signatures stay valid) to --target. FAULTS is a comma
list consumed one entry per request whose request line contains --match (default: every request); once it
is used up, requests pass. Entries:
  pass    forward the request
  503     answer 503 SlowDown without forwarding, then close
  drop    close the connection after the request head, without a reply
  reset   read half the request body, then reset the connection (RST) without a reply
  stall   read the request, then say nothing for --stall-seconds and close
  cut     forward the request, relay the reply's head and half its body, then reset the connection
--log appends one line per request: "<fault> <request line>". Runs until SIGTERM.
"""
import argparse
import os
import signal
import socket
import struct
import sys
import threading
import time

lock = threading.Lock()
plan = []
args = None


def next_fault(request_line):
    with lock:
        if args.match and args.match not in request_line:
            return "pass"
        return plan.pop(0) if plan else "pass"


def log(fault, request_line):
    if not args.log:
        return
    with lock:
        with open(args.log, "a") as f:
            f.write(f"{fault} {request_line}\n")


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head

    def read_exact(self, n):
        out = []
        while n > 0:
            if not self.buf:
                data = self.sock.recv(min(n, 1 << 20))
                if not data:
                    raise ConnectionError("short body")
                self.buf = data
            take = self.buf[:n]
            self.buf = self.buf[n:]
            out.append(take)
            n -= len(take)
        return b"".join(out)

    def read_line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("eof in line")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_to_eof(self):
        out = [self.buf]
        self.buf = b""
        while True:
            data = self.sock.recv(1 << 20)
            if not data:
                return b"".join(out)
            out.append(data)


def parse_headers(head):
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            headers[k.strip().lower().decode()] = v.strip().decode()
    return lines[0].decode(errors="replace"), lines[1:], headers


def relay_body(src, dst, headers, no_body):
    """Copies a response body framed by Content-Length or chunked encoding from src to dst."""
    if no_body:
        return True
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            line = src.read_line()
            dst.sendall(line + b"\r\n")
            size = int(line.split(b";")[0], 16)
            data = src.read_exact(size + 2)
            dst.sendall(data)
            if size == 0:
                return True
    if "content-length" in headers:
        n = int(headers["content-length"])
        while n > 0:
            chunk = src.read_exact(min(n, 1 << 20))
            dst.sendall(chunk)
            n -= len(chunk)
        return True
    dst.sendall(src.read_to_eof())
    return False


def reset(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def handle(client_sock):
    client = Conn(client_sock)
    upstream = None
    try:
        while True:
            head = client.read_head()
            if head is None:
                return
            request_line, raw_lines, headers = parse_headers(head)
            fault = next_fault(request_line)
            log(fault, request_line)
            length = int(headers.get("content-length", "0"))
            expect = headers.get("expect", "").lower() == "100-continue"
            if fault == "drop":
                client_sock.close()
                return
            if fault == "503":
                body = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message></Message></Error>'
                client_sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
                                    b"Connection: close\r\nContent-Length: " + str(len(body)).encode() +
                                    b"\r\n\r\n" + body)
                client_sock.close()
                return
            if expect:
                client_sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if fault == "reset":
                if length > 1:
                    client.read_exact(length // 2)
                reset(client_sock)
                return
            body = client.read_exact(length) if length else b""
            if fault == "stall":
                time.sleep(args.stall_seconds)
                client_sock.close()
                return
            if upstream is None:
                host, port = args.target.rsplit(":", 1)
                upstream = Conn(socket.create_connection((host, int(port))))
            kept = [l for l in raw_lines if not l.lower().startswith(b"expect:")]
            upstream.sock.sendall(b"\r\n".join([request_line.encode()] + kept) + b"\r\n\r\n" + body)
            while True:
                rhead = upstream.read_head()
                if rhead is None:
                    client_sock.close()
                    return
                status_line, _, rheaders = parse_headers(rhead)
                status = int(status_line.split()[1])
                if 100 <= status < 200:
                    continue  # our own 100 Continue went to the client already
                break
            client_sock.sendall(rhead + b"\r\n\r\n")
            if fault == "cut" and "content-length" in rheaders:
                half = int(rheaders["content-length"]) // 2
                if half:
                    client_sock.sendall(upstream.read_exact(half))
                reset(client_sock)
                return
            method = request_line.split()[0]
            framed = relay_body(upstream, client_sock, rheaders, method == "HEAD" or status in (204, 304))
            if not framed or rheaders.get("connection", "").lower() == "close":
                client_sock.close()
                return
    except (OSError, ConnectionError, ValueError):
        try:
            client_sock.close()
        except OSError:
            pass
    finally:
        if upstream is not None:
            upstream.sock.close()


def main():
    global args, plan
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--plan", default="")
    p.add_argument("--match", default="")
    p.add_argument("--stall-seconds", type=float, default=5.0)
    p.add_argument("--log", default="")
    args = p.parse_args()
    plan = [f.strip() for f in args.plan.split(",") if f.strip()]
    for f in plan:
        if f not in ("pass", "503", "drop", "reset", "stall", "cut"):
            sys.exit(f"s3_fault_proxy: unknown fault {f!r}")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(tmp, args.port_file)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
