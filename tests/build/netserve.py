"""Test servers for the network cells, run inside a network namespace the test made.

    python netserve.py CERTDIR NAME=ADDR...

Serves, on loopback addresses only:
  DNS   udp 127.0.0.53:53   A (or AAAA, for an IPv6 ADDR) records for the NAME=ADDR pairs,
                            an empty answer for the other type, NXDOMAIN for other names
                            (no real DNS server is installed here; this stub answers
                            the two question types a resolver asks, A and AAAA)
  HTTPS tcp 127.0.0.1:8443  certificate CERTDIR/server.pem (signed by the test CA)
  HTTP  tcp 127.0.0.1:8080 and [::1]:8080
Prints "ready" when all listen, logs each DNS question to stderr, stops when
stdin closes.
"""

import http.server
import socket
import ssl
import struct
import sys
import threading

DNS_ADDR = ("127.0.0.53", 53)
HTTPS_ADDR = ("127.0.0.1", 8443)
HTTP_ADDR = ("127.0.0.1", 8080)
HTTP6_ADDR = ("::1", 8080)
TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1


def parse_question(packet):
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1:offset + 1 + length].decode("ascii").lower())
        offset += 1 + length
    qtype, qclass = struct.unpack_from("!HH", packet, offset + 1)
    return ".".join(labels), qtype, packet[12:offset + 5]


def answer(packet, table):
    qid, = struct.unpack_from("!H", packet)
    name, qtype, question = parse_question(packet)
    addr = table.get(name)
    rcode = 0 if addr else 3  # NXDOMAIN for names we do not serve
    records = b""
    if addr and qtype == (TYPE_AAAA if ":" in addr else TYPE_A):
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        data = socket.inet_pton(family, addr)
        records = b"\xc0\x0c" + struct.pack("!HHIH", qtype, CLASS_IN, 30, len(data)) + data
    flags = 0x8180 | rcode  # response, recursion desired + available
    header = struct.pack("!HHHHHH", qid, flags, 1, 1 if records else 0, 0, 0)
    sys.stderr.write(f"dns {name} type {qtype} -> {addr or 'NXDOMAIN'}\n")
    return header + question + records


def serve_dns(table):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(DNS_ADDR)

    def loop():
        while True:
            packet, peer = sock.recvfrom(512)
            try:
                sock.sendto(answer(packet, table), peer)
            except (IndexError, struct.error, UnicodeDecodeError):
                pass

    threading.Thread(target=loop, daemon=True).start()


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello over {'https' if isinstance(self.connection, ssl.SSLSocket) else 'http'}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve_http(addr, certdir=None):
    server = (Server6 if ":" in addr[0] else http.server.ThreadingHTTPServer)(addr, Hello)
    if certdir:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{certdir}/server.pem", f"{certdir}/server.key")
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main(argv):
    certdir, pairs = argv[0], argv[1:]
    table = dict(pair.lower().split("=", 1) for pair in pairs)
    serve_dns(table)
    serve_http(HTTPS_ADDR, certdir)
    serve_http(HTTP_ADDR)
    serve_http(HTTP6_ADDR)
    print("ready", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
