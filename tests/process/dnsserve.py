"""A tiny DNS responder for tests: `python dnsserve.py ADDR NAME IP FAIL_FIRST`.

No real server answers from a file as simply for one name on a chosen loopback
address, so this loopback stub is hand-written (RFC 1035 header + one question).
It answers NXDOMAIN to the first FAIL_FIRST queries for NAME's A record, then
NAME -> IP; AAAA gets an empty NOERROR answer, anything else NXDOMAIN.  It prints
"ready" once bound and one line per query ("A nxdomain", "A answer", ...).
"""

import socket
import struct
import sys


def parse_question(packet):
    i, labels = 12, []
    while packet[i]:
        n = packet[i]
        labels.append(packet[i + 1:i + 1 + n].decode("ascii", "replace").lower())
        i += 1 + n
    qtype, _qclass = struct.unpack("!HH", packet[i + 1:i + 5])
    return ".".join(labels), qtype, packet[12:i + 5]


def reply(packet, question, rcode, answer=b""):
    ident, flags = struct.unpack("!HH", packet[:4])
    flags = 0x8000 | (flags & 0x0100) | 0x0400 | 0x0080 | rcode  # QR, RD copied, AA, RA
    header = struct.pack("!HHHHHH", ident, flags, 1, 1 if answer else 0, 0, 0)
    return header + question + answer


def main(addr, name, ip, fail_first):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, 53))
    print("ready", flush=True)
    failed = 0
    while True:
        packet, peer = sock.recvfrom(512)
        qname, qtype, question = parse_question(packet)
        if qname != name.lower():
            sock.sendto(reply(packet, question, 3), peer)
            print("other nxdomain", flush=True)
        elif qtype == 1 and failed < fail_first:
            failed += 1
            sock.sendto(reply(packet, question, 3), peer)
            print("A nxdomain", flush=True)
        elif qtype == 1:
            rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(ip)
            sock.sendto(reply(packet, question, 0, rr), peer)
            print("A answer", flush=True)
        else:
            sock.sendto(reply(packet, question, 0), peer)
            print("other empty", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
