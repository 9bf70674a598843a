#!/usr/bin/env python3
"""A token service for the registry tests: what ACR, Docker Hub and GHCR put in front of a
registry. docker-registry (distribution 2.8, real) is configured with `auth: token`; it answers
401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, the client asks this service for
a token with its basic credentials, and presents the token to the registry, which checks its
ES256 signature against `rootcertbundle` (the x5c chain) and its `access` claims.

Usage: token_server.py KEY.pem CERT.pem USER PASSWORD PORTFILE
"""
import base64
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
user, password, portfile = sys.argv[3], sys.argv[4], sys.argv[5]
x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        q = parse_qs(urlparse(self.path).query)
        access = []
        for scope in q.get("scope", []):
            kind, rest = scope.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
        claims = {"iss": "sostle-test-issuer", "sub": user, "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        r, s = utils.decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        token = signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = HTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
