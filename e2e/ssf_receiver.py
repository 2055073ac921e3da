"""An independent Shared Signals (SSF 1.0) receiver for Tessera's transmitter tests,
written with Authlib's JOSE implementation (not Tessera's code).

    python ssf_receiver.py --issuer URL --client-id ID --client-secret S --mode push|poll
                           --out FILE [--port P] [--down-file F]

It reads the transmitter's metadata (`/.well-known/ssf-configuration`, whose issuer
must be URL) and the issuer's OpenID metadata (the token endpoint), gets an access
token by client credentials with the scopes `ssf.manage ssf.read`, creates a stream
asking for every CAEP and RISC event Tessera sends (push to its own endpoint with an
authorization header, or poll), asks for a verification event with a random state,
and then takes SETs: each is verified with the transmitter's JWKS (RS256, typ
`secevent+jwt`, iss the transmitter, aud this client, no `sub` or `exp`, one event, a
`sub_id`), a `jti` seen twice is refused, and what passed is appended to FILE as a JSON
line `{"jti", "event", "sub_id", "members", "txn"}`. The stream's configuration is the
first line (`{"config": ...}`), and `{"verified": state}` follows when the verification
event echoes the state asked for.

While --down-file exists the receiver is "down": a push gets 503, and no poll is made.
A push it refuses gets 400 with `err` (RFC 8935); a push without its authorization
header gets 401.
"""

import argparse
import json
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import os

from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose.errors import JoseError

EVENTS = [
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
    "https://schemas.openid.net/secevent/caep/event-type/credential-change",
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change",
    "https://schemas.openid.net/secevent/caep/event-type/assurance-level-change",
    "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change",
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
    "https://schemas.openid.net/secevent/risc/event-type/account-enabled",
    "https://schemas.openid.net/secevent/risc/event-type/account-purged",
    "https://schemas.openid.net/secevent/risc/event-type/credential-compromise",
    "https://schemas.openid.net/secevent/risc/event-type/identifier-changed",
]
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"


def http(method, url, body=None, token=None, form=None):
    headers = {"Accept": "application/json"}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text.decode(errors="replace")


class Receiver:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.seen = set()
        self.out = open(args.out, "a", buffering=1)
        status, self.metadata = http("GET", args.issuer.rstrip("/") + "/.well-known/ssf-configuration")
        assert status == 200, self.metadata
        assert self.metadata["issuer"] == args.issuer.rstrip("/"), self.metadata["issuer"]
        status, oidc = http("GET", args.issuer.rstrip("/") + "/.well-known/openid-configuration")
        assert status == 200, oidc
        self.token_endpoint = oidc["token_endpoint"]
        status, jwks = http("GET", self.metadata["jwks_uri"])
        assert status == 200, jwks
        self.keys = JsonWebKey.import_key_set(jwks)
        self.jwt = JsonWebToken(["RS256"])
        self.push_secret = secrets.token_urlsafe(24)

    def token(self):
        status, answer = http(
            "POST",
            self.token_endpoint,
            form={
                "grant_type": "client_credentials",
                "client_id": self.args.client_id,
                "client_secret": self.args.client_secret,
                "scope": "ssf.manage ssf.read",
            },
        )
        assert status == 200, answer
        return answer["access_token"]

    def write(self, line):
        with self.lock:
            self.out.write(json.dumps(line) + "\n")

    def take(self, token):
        """Verifies one SET; (True, None) or (False, (err, description))."""
        try:
            header = json.loads(urlsafe_b64decode(token.split(".")[0]))
            if header.get("typ") != "secevent+jwt":
                return False, ("invalid_request", "typ is not secevent+jwt")
            claims = self.jwt.decode(token, self.keys)
        except (JoseError, ValueError, IndexError) as error:
            return False, ("invalid_key", str(error))
        if claims.get("iss") != self.metadata["issuer"]:
            return False, ("invalid_issuer", "not the transmitter")
        if claims.get("aud") != self.args.client_id:
            return False, ("invalid_audience", "not this receiver")
        if "sub" in claims or "exp" in claims:
            return False, ("invalid_request", "sub or exp present")
        events = claims.get("events") or {}
        if len(events) != 1 or "sub_id" not in claims:
            return False, ("invalid_request", "one event and a sub_id")
        with self.lock:
            if claims["jti"] in self.seen:
                return False, ("invalid_request", "replayed")
            self.seen.add(claims["jti"])
        (event, members), = events.items()
        if event == VERIFICATION:
            if members.get("state") == self.state:
                self.write({"verified": self.state})
            else:
                self.write({"verification": members.get("state")})
            return True, None
        self.write({
            "jti": claims["jti"],
            "event": event,
            "sub_id": claims["sub_id"],
            "members": members,
            "txn": claims.get("txn"),
        })
        return True, None

    def down(self):
        return self.args.down_file and os.path.exists(self.args.down_file)


def urlsafe_b64decode(part):
    import base64
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def serve_push(receiver, port):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body=None):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            if receiver.down():
                return self.answer(503)
            if self.headers.get("Authorization") != "Bearer " + receiver.push_secret:
                return self.answer(401, {"err": "authentication_failed"})
            if self.headers.get("Content-Type") != "application/secevent+jwt":
                return self.answer(400, {"err": "invalid_request", "description": "content type"})
            ok, error = receiver.take(body.strip())
            if ok:
                return self.answer(202)
            return self.answer(400, {"err": error[0], "description": error[1]})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--mode", choices=["push", "poll"], required=True)
    parser.add_argument("--port", type=int)
    parser.add_argument("--out", required=True)
    parser.add_argument("--down-file")
    args = parser.parse_args()
    receiver = Receiver(args)
    receiver.state = secrets.token_urlsafe(12)
    token = receiver.token()
    if args.mode == "push":
        serve_push(receiver, args.port)
        delivery = {
            "method": "urn:ietf:rfc:8935",
            "endpoint_url": "http://127.0.0.1:%d/events" % args.port,
            "authorization_header": "Bearer " + receiver.push_secret,
        }
    else:
        delivery = {"method": "urn:ietf:rfc:8936"}
    status, config = http(
        "POST",
        receiver.metadata["configuration_endpoint"],
        body={"events_requested": EVENTS, "delivery": delivery, "description": "independent receiver"},
        token=token,
    )
    assert status == 201, (status, config)
    assert config["iss"] == receiver.metadata["issuer"], config
    assert config["aud"] == args.client_id, config
    assert set(config["events_delivered"]) == set(EVENTS), config
    receiver.write({"config": config})
    status, answer = http(
        "POST",
        receiver.metadata["verification_endpoint"],
        body={"stream_id": config["stream_id"], "state": receiver.state},
        token=token,
    )
    assert status == 204, (status, answer)
    print("listening", flush=True)
    if args.mode == "push":
        while True:
            time.sleep(1)
    poll_url = config["delivery"]["endpoint_url"]
    acks, errors = [], {}
    token_at = time.time()
    while True:
        if receiver.down():
            time.sleep(0.2)
            continue
        if time.time() - token_at > 600:
            token, token_at = receiver.token(), time.time()
        body = {"maxEvents": 10, "returnImmediately": False, "ack": acks}
        if errors:
            body["setErrs"] = errors
        status, answer = http("POST", poll_url, body=body, token=token)
        if status != 200:
            print("poll failed", status, answer, file=sys.stderr, flush=True)
            time.sleep(1)
            continue
        acks, errors = [], {}
        # In the transmitter's order: the jtis' order in the answer.
        for jti, set_token in answer["sets"].items():
            ok, error = receiver.take(set_token)
            if ok:
                acks.append(jti)
            else:
                errors[jti] = {"err": error[0], "description": error[1]}


if __name__ == "__main__":
    main()
