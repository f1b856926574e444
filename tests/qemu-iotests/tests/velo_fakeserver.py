# velo_fakeserver.py: a deliberately misbehaving velo server for tests.
#
# It speaks just enough of docs/protocol.rst to get a client past the
# handshake, then breaks the protocol in the way its mode names, so tests
# can check that the velo driver reports a clear error and never crashes,
# hangs or caches bad data.  Mode promote-drop instead serves correctly but
# drops a connection at a chosen moment and records what the client sent.
# Mode no-reply is alive (it answers MAP and PING) but never answers a
# READ, like a server whose disk hangs.  self.conns counts connections.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import socket
import subprocess
import struct
import threading

from velo_common import MAGIC, HDR, HELLO_REPLY, ERROR, MAP, MAP_REPLY, \
    READ, READ_REPLY, PROMOTE, PING, PONG, F_PRIO, \
    BACKGROUND as READ_BACKGROUND

DISK_SIZE = 4 * 1024 * 1024
EXTENT = 65536

MODES = ('error-version', 'bad-version', 'garbage', 'oversize', 'truncate',
         'bad-chunk', 'bad-map', 'wrong-handle', 'zstd-unasked',
         'zstd-bomb', 'zstd-garbage', 'promote-drop', 'no-reply',
         'big-reply')
ZSTD_MODES = ('zstd-bomb', 'zstd-garbage')


def recv_exact(c, n):
    buf = b''
    while len(buf) < n:
        d = c.recv(n - len(buf))
        if not d:
            raise EOFError
        buf += d
    return buf


def frame(typ, handle, payload=b'', status=0, length=None):
    return HDR.pack(MAGIC, typ, 0, handle,
                    len(payload) if length is None else length,
                    status) + payload


def zstd_frame(data: bytes) -> bytes:
    return subprocess.run(['zstd', '-q', '-c'], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def map_all_data():
    """A MAP_REPLY payload: the whole disk is data."""
    return struct.pack('>IQQII', 1, 0, DISK_SIZE, 0, 0)


def raw_chunk(off, length):
    """A READ_REPLY payload of one RAW chunk of 0xee bytes at @off."""
    return struct.pack('>QIHHI', off, length, 0, 0, length) + b'\xee' * length


def hello_reply(version=1, features=0):
    return struct.pack('>HHIQQIIQ', version, 0, EXTENT, features, DISK_SIZE,
                       (4 << 20) + 4096, 16, 0) + b'\x42' * 16


class FakeServer:
    def __init__(self, path, mode):
        assert mode in MODES
        self.path, self.mode = path, mode
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(8)
        self.stopped = False
        self.conns = 0
        self.events = []        # what the server saw: (conn, kind, off, len)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()

    def _run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(c,), daemon=True).start()

    def _client(self, c):
        try:
            self._serve(c)
        except (EOFError, OSError):
            pass
        finally:
            c.close()

    def _read_frame(self, c):
        magic, typ, flags, handle, length, status = HDR.unpack(recv_exact(c, HDR.size))
        return typ, handle, recv_exact(c, length) if length else b''

    def _serve(self, c):
        m = self.mode
        typ, handle, _ = self._read_frame(c)
        if m == 'error-version':
            msg = b'server speaks protocol versions 7..9'
            c.sendall(frame(ERROR, handle, struct.pack('>H', len(msg)) + msg,
                            status=9))
            return
        if m == 'bad-version':
            c.sendall(frame(HELLO_REPLY, handle, hello_reply(version=7)))
            return
        if m == 'garbage':
            c.sendall(b'HTTP/1.1 400 Bad Request\r\n\r\n' + b'x' * 100)
            return
        if m == 'promote-drop':
            self._promote_drop(c, handle)
            return
        self.conns += 1
        conn = self.conns
        c.sendall(frame(HELLO_REPLY, handle,
                        hello_reply(features=1 if m in ZSTD_MODES else 0)))
        while True:
            typ, handle, payload = self._read_frame(c)
            if typ == PING:
                c.sendall(frame(PONG, handle))
                continue
            if typ == MAP:
                if m == 'bad-map':
                    # An entry that does not start at the requested offset.
                    c.sendall(frame(MAP_REPLY, handle,
                                    struct.pack('>IQQII', 1, 4096, 4096, 0, 0)))
                    continue
                c.sendall(frame(MAP_REPLY, handle, map_all_data()))
                continue
            if typ != READ or m == 'no-reply':
                continue
            off, length, _ = struct.unpack('>QII', payload)
            self.events.append((conn, 'READ', off, length))
            if m == 'oversize':
                c.sendall(frame(READ_REPLY, handle, length=0x7fffffff))
                return
            if m == 'wrong-handle':
                c.sendall(frame(READ_REPLY, handle + 1000, b''))
                continue
            if m.startswith('zstd-'):
                # A compressed chunk the client did not ask for, one that
                # inflates past its length, or one that is not zstd at all.
                z = (b'\x28\xb5\x2f\xfd' + b'\xee' * 60
                     if m == 'zstd-garbage' else
                     zstd_frame(b'\xee' * (length + (1 << 20))))
                chunk = struct.pack('>QIHHI', off, length, 2, 0, len(z)) + z
                c.sendall(frame(READ_REPLY, handle, chunk))
                continue
            if m == 'big-reply':
                # Far more than the READ can need, within max-payload.
                c.sendall(frame(READ_REPLY, handle,
                                raw_chunk(off, length) + bytes(2 << 20)))
                continue
            chunk = raw_chunk(off + (512 if m == 'bad-chunk' else 0), length)
            if m == 'truncate':
                data = frame(READ_REPLY, handle, chunk)
                c.sendall(data[:len(data) // 2])
                return
            c.sendall(frame(READ_REPLY, handle, chunk))

    def _promote_drop(self, c, hello_handle):
        """A well-behaved server with feature PRIO, except that on its first
        connection it holds BACKGROUND READs back, and drops the connection
        once the client PROMOTEs one of them.  self.events says what each
        connection saw, so a test can check how the READ was resent."""
        self.conns += 1
        conn = self.conns
        held = {}
        c.sendall(frame(HELLO_REPLY, hello_handle,
                        hello_reply(features=F_PRIO)))
        while True:
            typ, handle, payload = self._read_frame(c)
            if typ == MAP:
                c.sendall(frame(MAP_REPLY, handle, map_all_data()))
                continue
            if typ == PROMOTE:
                if handle in held:
                    self.events.append((conn, 'PROMOTE', held[handle], 0))
                    return          # the connection drops
                continue
            if typ != READ:
                continue
            off, length, flags = struct.unpack('>QII', payload)
            self.events.append((conn, 'READ', off, flags))
            if conn == 1 and flags & READ_BACKGROUND:
                held[handle] = off
                continue
            c.sendall(frame(READ_REPLY, handle, raw_chunk(off, length)))
