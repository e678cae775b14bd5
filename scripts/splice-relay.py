#!/usr/bin/env python3
"""A TCP relay that moves bytes with splice(2) through a pipe, never through user space: the
cheapest hop one more process can add. scripts/benchmark puts it in front of an all-in-one
registry to measure what any extra hop (such as split mode's gateway) costs on this machine.
  usage: splice-relay.py LISTEN_PORT TARGET_PORT
"""

import fcntl
import os
import socket
import sys
import threading

CHUNK = 1 << 20


def pump(source, target):
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, CHUNK)
    try:
        while True:
            moved = os.splice(source.fileno(), write_end, CHUNK)
            if moved == 0:
                break
            while moved:
                moved -= os.splice(read_end, target.fileno(), moved)
    except OSError:
        pass
    finally:
        os.close(read_end)
        os.close(write_end)
        for sock, how in ((target, socket.SHUT_WR), (source, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


def serve(client, target_port):
    upstream = socket.create_connection(("127.0.0.1", target_port))
    for sock in (client, upstream):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def main():
    listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(128)
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client, target_port), daemon=True).start()


if __name__ == "__main__":
    main()
