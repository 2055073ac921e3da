"""An independent Shared Signals (SSF 1.0) transmitter for Tessera's receiver tests,
written with Authlib's JOSE implementation (not Tessera's code).

    python ssf_transmitter.py serve --port P --key FILE
        Makes an RSA key (kept in FILE as a private JWK), then serves, on
        http://127.0.0.1:P, the transmitter metadata (/.well-known/ssf-configuration,
        issuer http://127.0.0.1:P) and its public keys (/jwks). Prints `listening`.

    python ssf_transmitter.py push --key FILE --issuer ISS --audience AUD --url URL
                                   --secret S --event EVENT --subject JSON [--members JSON]
                                   [--jti J] [--tamper signature|key]
        Signs one SET (typ secevent+jwt, RS256; the event's members and a top-level
        sub_id) and POSTs it to URL with `Authorization: Bearer S` (RFC 8935). Prints
        `{"status": code, "body": answer}`. --tamper signature flips a byte of the
        signature; --tamper key signs with a key the metadata does not publish.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from authlib.jose import JsonWebKey, JsonWebSignature


def serve(args):
    key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "tx-1"})
    with open(args.key, "w") as f:
        json.dump(key.as_dict(is_private=True), f)
    issuer = "http://127.0.0.1:%d" % args.port
    metadata = {
        "issuer": issuer,
        "spec_version": "1_0",
        "jwks_uri": issuer + "/jwks",
        "delivery_methods_supported": ["urn:ietf:rfc:8935"],
    }
    public = {"keys": [key.as_dict(is_private=False)]}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path == "/.well-known/ssf-configuration":
                body = metadata
            elif self.path == "/jwks":
                body = public
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("listening", flush=True)
    server.serve_forever()


def push(args):
    with open(args.key) as f:
        key = JsonWebKey.import_key(json.load(f))
    if args.tamper == "key":
        key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "tx-1"})
    event = args.event
    if "/" not in event:
        family = "risc" if event in ("credential-compromise", "account-disabled") else "caep"
        event = "https://schemas.openid.net/secevent/%s/event-type/%s" % (family, event)
    claims = {
        "iss": args.issuer,
        "aud": args.audience,
        "iat": int(time.time()),
        "jti": args.jti or uuid.uuid4().hex,
        "sub_id": json.loads(args.subject),
        "events": {event: json.loads(args.members)},
    }
    header = {"alg": "RS256", "typ": "secevent+jwt", "kid": "tx-1"}
    token = JsonWebSignature().serialize_compact(header, json.dumps(claims).encode(), key).decode()
    if args.tamper == "signature":
        head, payload, signature = token.split(".")
        flipped = "A" if signature[5] != "A" else "B"
        token = ".".join([head, payload, signature[:5] + flipped + signature[6:]])
    request = urllib.request.Request(
        args.url,
        data=token.encode(),
        method="POST",
        headers={
            "Content-Type": "application/secevent+jwt",
            "Accept": "application/json",
            "Authorization": "Bearer " + args.secret,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = text.decode(errors="replace")
    print(json.dumps({"status": status, "body": body}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--key", required=True)
    p = sub.add_parser("push")
    for name in ("--key", "--issuer", "--audience", "--url", "--secret", "--event", "--subject"):
        p.add_argument(name, required=True)
    p.add_argument("--members", default="{}")
    p.add_argument("--jti")
    p.add_argument("--tamper", choices=["signature", "key"])
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
    else:
        push(args)


if __name__ == "__main__":
    sys.exit(main())
