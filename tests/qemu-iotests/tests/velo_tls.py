# velo_tls.py: make x509 and PSK credentials for Velo's TLS iotests with
# GnuTLS's certtool and psktool, in the directory layout QEMU's
# tls-creds-x509 and tls-creds-psk objects read.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import shutil
import subprocess

import iotests


def have_tools() -> bool:
    return bool(shutil.which('certtool') and shutil.which('psktool'))


def _certtool(*args: str):
    subprocess.run(['certtool', *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _template(path: str, lines: list):
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')


class PKI:
    """A CA in @top/@name that issues server and client certificates."""

    def __init__(self, top: str, name: str):
        self.top = top
        self.name = name
        os.makedirs(top, exist_ok=True)
        self.key = os.path.join(top, f'{name}-ca-key.pem')
        self.cert = os.path.join(top, f'{name}-ca-cert.pem')
        _certtool('--generate-privkey', '--key-type=ecdsa', '--outfile',
                  self.key)
        tpl = os.path.join(top, 'ca.info')
        _template(tpl, [f'cn = Velo test CA {name}', 'ca', 'cert_signing_key',
                        'expiration_days = 2'])
        _certtool('--generate-self-signed', '--load-privkey', self.key,
                  '--template', tpl, '--outfile', self.cert)
        os.remove(tpl)

    def issue(self, endpoint: str, subdir: str, cn: str,
              hosts: tuple = ()) -> str:
        """Write a creds directory for @endpoint ('server' or 'client')."""
        d = os.path.join(self.top, subdir)
        os.makedirs(d, exist_ok=True)
        shutil.copy(self.cert, os.path.join(d, 'ca-cert.pem'))
        key = os.path.join(d, f'{endpoint}-key.pem')
        _certtool('--generate-privkey', '--key-type=ecdsa', '--outfile', key)
        lines = [f'cn = {cn}', 'organization = Velo tests', 'expiration_days = 2',
                 'signing_key', 'encryption_key']
        lines.append('tls_www_server' if endpoint == 'server' else
                     'tls_www_client')
        for h in hosts:
            lines.append(f'ip_address = {h}' if h[0].isdigit() else
                         f'dns_name = {h}')
        tpl = os.path.join(d, 'cert.info')
        _template(tpl, lines)
        _certtool('--generate-certificate', '--load-privkey', key,
                  '--load-ca-certificate', self.cert,
                  '--load-ca-privkey', self.key, '--template', tpl,
                  '--outfile', os.path.join(d, f'{endpoint}-cert.pem'))
        os.remove(tpl)
        return d


def psk_dir(top: str, subdir: str, user: str, key_hex: str) -> str:
    """A tls-creds-psk directory holding one user's key (keys.psk)."""
    d = os.path.join(top, subdir)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'keys.psk'), 'w', encoding='ascii') as f:
        f.write(f'{user}:{key_hex}\n')
    return d


def tls_top() -> str:
    return os.path.join(iotests.test_dir, 'tls')
