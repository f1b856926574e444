# velo_common.py: shared helpers for Velo's named qemu-iotests.
#
# Starts velo exports in qemu-storage-daemon, builds velo blockdev options
# and json: filenames, runs the link emulator (tests/wan/velo-link), filters
# values that change between runs, and talks the velo protocol raw
# (RawClient) for tests that send the export frames the driver never would.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import re
import socket
import struct
import subprocess
import threading
import time

import iotests

REPO = os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(__file__)),
                                     '..', '..', '..'))
VELO_LINK = os.path.join(REPO, 'tests', 'wan', 'velo-link')


def rm(path: str):
    """Remove @path if it exists."""
    if os.path.exists(path):
        os.remove(path)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (racy, but fine on a test machine)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def sock_path(name: str) -> str:
    return os.path.join(iotests.sock_dir, name)


def inet(port: int) -> dict:
    return {'type': 'inet', 'host': '127.0.0.1', 'port': str(port)}


def unix(path: str) -> dict:
    return {'type': 'unix', 'path': path}


class Export:
    """A qemu-storage-daemon serving one image over the velo protocol."""

    def __init__(self, img: str, fmt: str, addr: dict, name: str = 'disk0',
                 instance: str = 'onprem', extent_size: int = 65536,
                 extra: tuple = (), read_only: bool = True,
                 export_opts: str = '', objects: tuple = ()):
        self.img, self.fmt, self.addr, self.name = img, fmt, addr, name
        self.export_opts = export_opts
        self.objects = objects
        self.read_only = 'on' if read_only else 'off'
        self.instance = instance
        self.extent_size = extent_size
        self.extra = extra
        self.qsd = None

    def start(self):
        addr = ','.join(f'addr.{k}={v}' for k, v in self.addr.items())
        self.qsd = iotests.QemuStorageDaemon(
            *self.objects,
            '--blockdev', f'file,node-name=file0,filename={self.img},'
                          f'read-only={self.read_only}',
            '--blockdev', f'{self.fmt},node-name=fmt0,file=file0,'
                          f'read-only={self.read_only}',
            '--export', f'velo,id={self.name},node-name=fmt0,{addr},'
                        f'extent-size={self.extent_size}' +
                        (f',{self.export_opts}' if self.export_opts else ''),
            *self.extra, instance_id=self.instance, qmp=True)
        wait_listening(self.addr)
        return self

    def stop(self, sig=15):
        if self.qsd:
            self.qsd.stop(sig)
            self.qsd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def wait_listening(addr: dict, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if addr['type'] == 'unix':
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(addr['path'])
            else:
                socket.create_connection((addr['host'], int(addr['port'])), 1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f'nothing listens on {addr}')


def velo_opts(node: str, addr: dict, cache: str, export: str = 'disk0',
              **kw) -> dict:
    """blockdev-add arguments for a velo node."""
    opts = {'driver': 'velo', 'node-name': node, 'server': addr,
            'export': export, 'cache': {'file': cache}}
    opts.update({k.replace('_', '-'): v for k, v in kw.items()})
    return opts


def velo_json(addr: dict, cache: str, export: str = 'disk0', **kw) -> str:
    """A json: filename for qemu-img / qemu-io."""
    opts = velo_opts('velo0', addr, cache, export, **kw)
    del opts['node-name']
    return 'json:' + json.dumps(opts)


class Link:
    """The link emulator between a client and a server (tests/wan)."""

    def __init__(self, listen: dict, connect: dict, delay_ms: int = 0,
                 rate: str = '0'):
        self.ctl = sock_path('link.ctl')
        self.pidfile = os.path.join(iotests.test_dir, 'link.pid')
        args = [VELO_LINK, '--listen', addr_str(listen),
                '--connect', addr_str(connect), '--delay-ms', str(delay_ms),
                '--rate', rate, '--control', self.ctl,
                '--pidfile', self.pidfile,
                '--log', os.path.join(iotests.test_dir, 'link.log')]
        self.p = subprocess.Popen(args)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.pidfile):
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('velo-link failed to start')
            time.sleep(0.01)

    def cmd(self, *words) -> str:
        r = subprocess.run([VELO_LINK, '--ctl', self.ctl, *words],
                           capture_output=True, text=True, check=True)
        return r.stdout.strip()

    def stop(self):
        self.p.terminate()
        self.p.wait()


def addr_str(addr: dict) -> str:
    if addr['type'] == 'unix':
        return 'unix:' + addr['path']
    return f"{addr['host']}:{addr['port']}"


def velo_stats(vm, node: str) -> dict:
    """driver-specific query-blockstats of @node in @vm (a VM or QSD)."""
    r = vm.qmp('query-blockstats', {'query-nodes': True})
    for st in r['return']:
        if st.get('node-name') == node:
            return st['driver-specific']
    raise KeyError(node)


def filter_velo(msg: str) -> str:
    """Filter values that change between runs (ports, paths)."""
    msg = iotests.filter_testfiles(msg)
    msg = msg.replace(iotests.sock_dir, 'SOCK_DIR')
    msg = msg.replace(iotests.test_dir, 'TEST_DIR')
    msg = re.sub(r'127\.0\.0\.1:\d+', '127.0.0.1:PORT', msg)
    msg = re.sub(r"'port': '\d+'", "'port': 'PORT'", msg)
    msg = re.sub(r'"port": "\d+"', '"port": "PORT"', msg)
    return msg


def io(vm, node: str, cmd: str):
    """
    Run a qemu-io command on @node through HMP.  qemu-io prints to the VM's
    stdout, so its output reaches the golden output through
    shutdown_log(); anything HMP itself answers is logged here.
    """
    r = vm.hmp_qemu_io(node, cmd)
    if r.get('return') != '':
        iotests.log(filter_velo(str(r)))


def shutdown_log(vm):
    """Shut @vm down and log what it printed (qemu-io output, warnings)."""
    vm.shutdown()
    out = iotests.filter_qemu_io(vm.get_log() or '')
    out = re.sub(r'qemu-system-x86_64: ', 'qemu: ', out)
    out = '\n'.join(l for l in out.splitlines() if not l.startswith('[I '))
    iotests.log(filter_velo(out).rstrip())


def qemu_io_nofmt(*args: str) -> 'subprocess.CompletedProcess[str]':
    """qemu-io without the test's -f option (for json: and velo:// names)."""
    return subprocess.run(iotests.qemu_io_args_no_fmt + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)


def add_qmp_socket(vm, name: str = 'qmp2') -> str:
    """
    Give @vm (not launched yet) a second QMP monitor on a unix socket, for
    QmpThread; returns the socket's path.
    """
    path = sock_path(f'{name}.sock')
    vm.add_args('-chardev', f'socket,id={name},path={path},server=on,wait=off',
                '-mon', f'chardev={name},mode=control')
    return path


class QmpThread(threading.Thread):
    """
    One QMP command sent on a second monitor (add_qmp_socket) from a thread:
    for a command that blocks until a drain ends (human-monitor-command
    qemu-io, blockdev-reopen, blockdev-del) while the test goes on, e.g.
    restarting an origin.  The iotests QMP clients (VM, storage daemon)
    share one asyncio event loop that only one thread can run at a time, so
    this one speaks QMP over a plain socket.  The answer ends up in .result.
    """

    def __init__(self, path: str, cmd: str, **args):
        super().__init__(daemon=True)
        self.path, self.cmd, self.args = path, cmd, args
        self.result = None
        self.start()

    def run(self):
        try:
            self._run()
        except (OSError, ValueError) as e:     # the VM went away
            self.result = {'error': {'desc': f'{self.cmd}: {e}'}}

    def _run(self):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.path)
            f = s.makefile('rw', encoding='utf-8')

            def call(cmd, args):
                f.write(json.dumps({'execute': cmd, 'arguments': args}) + '\n')
                f.flush()
                while True:
                    msg = json.loads(f.readline())
                    if 'return' in msg or 'error' in msg:
                        return msg

            json.loads(f.readline())            # the greeting
            call('qmp_capabilities', {})
            self.result = call(self.cmd, self.args)

    def wait(self, timeout: float = 120.0):
        """Wait for the answer; raise if there is none after @timeout s."""
        self.join(timeout)
        if self.is_alive():
            raise RuntimeError(f'{self.cmd} still running after {timeout} s')
        return self.result


# The velo wire protocol, for tests that talk it raw (RawClient).  The
# numbers are those of docs/protocol.rst (and block/proto.h); change them
# together.
MAGIC = 0x56454C4F
HDR = struct.Struct('>IHHQII')  # magic, type, flags, handle, length, status
(HELLO, HELLO_REPLY, ERROR, MAP, MAP_REPLY, READ, READ_REPLY, WRITE,
 WRITE_REPLY, FLUSH, FLUSH_REPLY, DISCONNECT, PING, PONG,
 PROMOTE) = range(1, 16)
MSG = dict(enumerate((
    'HELLO', 'HELLO_REPLY', 'ERROR', 'MAP', 'MAP_REPLY', 'READ', 'READ_REPLY',
    'WRITE', 'WRITE_REPLY', 'FLUSH', 'FLUSH_REPLY', 'DISCONNECT', 'PING',
    'PONG', 'PROMOTE'), 1))
STATUS = ['OK', 'INVAL', 'NOENT', 'IO', 'NOTSUP', 'RANGE', 'PROTO', 'BUSY',
          'SHUTDOWN', 'VERSION', 'PERM', 'SEQ', 'STALE']
F_ZSTD, F_HASH, F_WRITE, F_PRIO = 1, 2, 4, 8     # HELLO feature bits
NO_REF, BACKGROUND = 1, 2                         # READ flags
RAW, ZERO, ZSTD, REF = 0, 1, 2, 3                 # chunk encodings
WRITE_HDR, CHUNK_HDR = 32, 20
RESULT = ['APPLIED', 'DUPLICATE']                 # WRITE_REPLY result


class Closed(Exception):
    """The connection of a RawClient is gone (EOF, reset, broken pipe)."""


def frame(typ: int, handle: int, payload: bytes = b'', flags: int = 0,
          length: int = None) -> bytes:
    """A request frame; its header may lie about the @length."""
    return HDR.pack(MAGIC, typ, flags, handle,
                    len(payload) if length is None else length, 0) + payload


class RawClient:
    """
    A raw velo protocol client (docs/protocol.rst) that does only what it is
    told: HELLO on a unix() address, then frames sent and received one at a
    time.  HELLO_REPLY's fields are attributes (features, max_payload, ...).
    A lost connection raises Closed and sets .closed, a timeout raises
    TimeoutError.
    """

    def __init__(self, addr: dict, features: int, name: str = 'disk0',
                 store_id: bytes = b'\x77' * 16, timeout: float = 10.0):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(addr['path'])
        self.handle = 0
        self.closed = False
        nm = name.encode()
        p = struct.pack('>HHIQH', 1, 1, 0, features, len(nm)) + nm
        if features & F_HASH:
            p += store_id
        self.send(HELLO, p)
        r = self.recv()
        if r[0] != HELLO_REPLY:
            raise RuntimeError(f'handshake failed: {describe_reply(r)}')
        (self.version, _, self.extent, self.features, self.disk_size,
         self.max_payload, self.max_inflight, self.flags) = \
            struct.unpack('>HHIQQIIQ', r[3][:40])

    def send(self, typ: int, payload: bytes = b'', length: int = None,
             handle: int = None) -> int:
        """Send one frame (its header may lie about the length); return
        its handle (the next one unless @handle)."""
        if handle is None:
            self.handle += 1
            handle = self.handle
        self.sendraw(frame(typ, handle, payload, length=length))
        return handle

    def sendraw(self, data: bytes):
        try:
            self.s.sendall(data)
        except OSError as e:
            self.closed = True
            raise Closed(str(e)) from e

    def read_req(self, offset: int, length: int, flags: int = 0) -> int:
        return self.send(READ, struct.pack('>QII', offset, length, flags))

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                d = self.s.recv(n - len(buf))
            except socket.timeout as e:
                raise TimeoutError from e
            except OSError as e:    # ECONNRESET when our bytes were unread
                self.closed = True
                raise Closed(str(e)) from e
            if not d:
                self.closed = True
                raise Closed('EOF')
            buf += d
        return bytes(buf)

    def recv(self) -> tuple:
        """(type, handle, status, payload) of the next frame."""
        magic, typ, _, handle, length, status = \
            HDR.unpack(self._recv_exact(HDR.size))
        if magic != MAGIC:
            raise RuntimeError(f'bad magic {magic:#x}')
        return typ, handle, status, self._recv_exact(length) if length else b''

    def close(self):
        self.s.close()


def unzstd(data: bytes) -> bytes:
    return subprocess.run(['zstd', '-q', '-d', '-c'], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def chunks_data(p: bytes) -> bytes:
    """The data a READ_REPLY payload stands for (a REF chunk reads as '?')."""
    out, pos = bytearray(), 0
    while pos < len(p):
        _, clen, enc, _, plen = struct.unpack('>QIHHI', p[pos:pos + CHUNK_HDR])
        pl = p[pos + CHUNK_HDR:pos + CHUNK_HDR + plen]
        pos += CHUNK_HDR + plen
        out += pl if enc == RAW else bytes(clen) if enc == ZERO else \
            unzstd(pl) if enc == ZSTD else b'?' * clen
    return bytes(out)


def describe_reply(r: tuple) -> str:
    """A reply (type, handle, status, payload) for the golden output."""
    typ, _, status, p = r
    if typ == ERROR:
        n = struct.unpack('>H', p[:2])[0]
        msg = p[2:2 + n].decode(errors='replace')
        name = STATUS[status] if status < len(STATUS) else status
        return f'ERROR {name}: {filter_velo(msg)}'
    if typ == WRITE_REPLY:
        res, _, nxt = struct.unpack('>IIQ', p)
        return f'WRITE_REPLY {RESULT[res] if res < 2 else res}, ' \
               f'next-seq {nxt}'
    if typ == FLUSH_REPLY:
        seq, epoch = struct.unpack('>QQ', p)
        return f'FLUSH_REPLY durable-seq {seq}, epoch {epoch}'
    return f'{MSG.get(typ, typ)} ({len(p)} bytes)'
