#!/usr/bin/env python3
# hostile-s3.py PORTFILE MODE: an HTTP server on 127.0.0.1 (a free port,
# written to PORTFILE) that answers like a broken or hostile S3, for
# test-s3-hostile.sh.  Modes:
#   loop-invalid  every listing says "truncated", with the same token and
#                 only keys the client skips (a dot segment, '//')
#   html          200 with a web page for every request (not S3 at all)
#   ok            an empty, well-formed bucket
#   endless       every listing says "truncated" and brings 1000 new, valid
#                 keys after the last one asked for, for ever
#   hang          an empty bucket that never answers a PUT
# Counts list requests in PORTFILE.lists.
import http.server
import socketserver
import sys
import time
import urllib.parse

portfile, mode = sys.argv[1], sys.argv[2]
lists = 0


def listing(keys, truncated, token=None):
    x = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
         '<Name>bkt</Name><IsTruncated>%s</IsTruncated>'
         % ('true' if truncated else 'false'))
    for k in keys:
        x += '<Contents><Key>%s</Key><Size>1</Size></Contents>' % k
    if token:
        x += '<NextContinuationToken>%s</NextContinuationToken>' % token
    return (x + '</ListBucketResult>').encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        self.send_response(code)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def do_PUT(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        if mode == 'hang':
            with open(portfile + '.puts', 'a') as f:
                f.write(self.path + '\n')
            time.sleep(600)
            return
        if mode == 'html':
            return self.reply(200, b'<html><body>Welcome</body></html>')
        self.reply(200, b'')

    def do_GET(self):
        global lists
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        if mode == 'html':
            return self.reply(200, b'<html><body>Welcome</body></html>')
        if 'list-type' in q:
            lists += 1
            with open(portfile + '.lists', 'w') as f:
                f.write(str(lists))
            if mode == 'loop-invalid' and q.get('max-keys') != ['1']:
                return self.reply(200, listing(['.hidden', 'a//b'], True, 'T'))
            if mode == 'endless' and q.get('max-keys') != ['1']:
                keys = ['k/%012d' % (lists * 1000 + i) for i in range(1000)]
                return self.reply(200, listing(keys, True, 'T%d' % lists))
            return self.reply(200, listing([], False))
        self.reply(404, b'<Error><Code>NoSuchKey</Code></Error>')


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(('127.0.0.1', 0), Handler)
with open(portfile + '.tmp', 'w') as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(portfile + '.tmp', portfile)
srv.serve_forever()
