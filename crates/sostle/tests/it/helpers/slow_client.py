"""A client that misbehaves on purpose against the webhook (tests/it/webhook.rs, issue #24):
`stall PORT N`   opens N TLS connections that each send all but the last byte of a 3 MiB
                 body, then reports, per connection, the seconds until the server answered or
                 closed and the status line it sent (one line: "SECONDS STATUS-LINE");
`cap PORT N`     holds N idle TLS connections, then opens one more and reports whether the
                 server closed it ("CLOSED …") or kept it;
`header PORT`    sends a 200 KB header and reports the status line or "CLOSED".
Every socket has a timeout, so it ends by itself."""
import socket
import ssl
import sys
import threading
import time

port = int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    return ctx.wrap_socket(s, server_hostname="localhost")


def first_line(data):
    return data.split(b"\r\n")[0].decode(errors="replace") if data else "EOF"


mode = sys.argv[1]
if mode == "stall":
    n = int(sys.argv[3])
    size = 3 * 1024 * 1024 - 4096
    results = [None] * n

    def one(i):
        try:
            s = conn()
            s.sendall(b"POST /validate/L0 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % size)
            s.sendall(b" " * (size - 1))
            t = time.time()
            s.settimeout(60)
            data = b""
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
            except (socket.timeout, ssl.SSLError, ConnectionError):
                pass
            results[i] = "%.1f %s" % (time.time() - t, first_line(data))
        except (OSError, ssl.SSLError) as e:
            results[i] = "0.0 REFUSED %s" % type(e).__name__

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        print(r)
elif mode == "cap":
    n = int(sys.argv[3])
    held = [conn() for _ in range(n)]
    time.sleep(0.5)
    try:
        s = conn()
        s.settimeout(5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        d = s.recv(100)
        print("KEPT " + first_line(d) if d else "CLOSED EOF")
    except (OSError, ssl.SSLError) as e:
        print("CLOSED " + type(e).__name__)
    for h in held:
        h.close()
elif mode == "header":
    s = conn()
    s.settimeout(10)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
        print(first_line(s.recv(100)))
    except (OSError, ssl.SSLError) as e:
        # Closed while the header was still being sent.
        print("CLOSED " + type(e).__name__)
