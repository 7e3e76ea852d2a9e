#!/usr/bin/env python3
"""Test FTP server for ftpgate's integration tests.

Usage: pyftpd.py PORT ROOT [HOST]
Environment: PYFTPD_IDLE_TIMEOUT=SECONDS closes idle control connections.
PYFTPD_TLS_CERT=PEM and PYFTPD_TLS_KEY=PEM make it an FTPS server (explicit
AUTH TLS, TLS required on control and data connections; needs pyOpenSSL).

Serves ROOT on HOST (default 127.0.0.1) port PORT with user "test" / "secret" (full
permissions) and anonymous read access. Passive mode on, foreign
addresses refused (PORT must name the client's own address).
"""
import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main():
    port = int(sys.argv[1])
    root = sys.argv[2]
    host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    logging.basicConfig(level=logging.WARNING)
    auth = DummyAuthorizer()
    auth.add_user("test", "secret", root, perm="elradfmwMT")
    auth.add_anonymous(root)
    handler = FTPHandler
    if os.environ.get("PYFTPD_TLS_CERT"):
        from pyftpdlib.handlers import TLS_FTPHandler

        handler = TLS_FTPHandler
        handler.certfile = os.environ["PYFTPD_TLS_CERT"]
        handler.keyfile = os.environ["PYFTPD_TLS_KEY"]
        handler.tls_control_required = True
        handler.tls_data_required = True
    handler.authorizer = auth
    handler.permit_foreign_addresses = False
    handler.permit_privileged_ports = False
    handler.banner = "pyftpdlib test server ready."
    if os.environ.get("PYFTPD_IDLE_TIMEOUT"):
        handler.timeout = float(os.environ["PYFTPD_IDLE_TIMEOUT"])
    server = FTPServer((host, port), handler)
    server.max_cons = 64
    server.serve_forever()


if __name__ == "__main__":
    main()
