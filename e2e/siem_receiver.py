"""A stand-in SIEM collector for Tessera's SIEM export tests.

    python siem_receiver.py --port P --out FILE [--cert CERT.pem --key KEY.pem] [--secret S]
                            [--refuse TEXT]

It listens on 127.0.0.1 (HTTPS when --cert/--key are given, plain HTTP otherwise),
prints `listening` once ready, and appends what it accepts to FILE as JSON lines:

- POST /batches: a JSON batch `{"events": [...]}` signed with the header
  `Tessera-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`
  keyed with --secret. Each event becomes `{"via": "batch", "event": ...}`
  (plus `"batch"` from the `Tessera-Batch-Id` header). A bad signature gets 401.
- POST /v1/logs: an OTLP/HTTP JSON ExportLogsServiceRequest, parsed with the
  official opentelemetry-proto message and protobuf's json_format. Each log
  record becomes one `{"via": "otlp", ...}` line. A body that does not parse gets 400.

With --refuse, a request whose body holds TEXT gets 403 and nothing of it is
recorded (as a web application firewall in front of a SIEM might).

Anything else gets 404.
"""

import argparse
import hashlib
import hmac
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


def any_value(value):
    """Convert an OTLP AnyValue to a plain Python value (scalars only)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "int_value":
        return int(value.int_value)
    if kind in ("string_value", "bool_value", "double_value"):
        return getattr(value, kind)
    return json_format.MessageToDict(value)  # arrays, maps, bytes: keep their JSON form


def attributes(key_values):
    return {kv.key: any_value(kv.value) for kv in key_values}


def signature_ok(header, body, secret):
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    expected = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def otlp_records(request):
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                yield {
                    "via": "otlp",
                    "resource": resource,
                    "scope": scope_logs.scope.name,
                    "timeUnixNano": int(record.time_unix_nano),
                    "severityNumber": int(record.severity_number),
                    "severityText": record.severity_text,
                    "body": record.body.string_value,
                    "attributes": attributes(record.attributes),
                }


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body=b"{}"):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def record(self, lines):
        with self.server.lock, open(self.server.out, "a", encoding="utf-8") as out:
            out.writelines(json.dumps(line) + "\n" for line in lines)
            out.flush()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.server.refuse and self.server.refuse in body:
            return self.reply(403, b'{"error":"refused"}')
        if self.path == "/batches":
            header = self.headers.get("Tessera-Signature", "")
            if not signature_ok(header, body, self.server.secret):
                return self.reply(401, b'{"error":"bad signature"}')
            try:
                events = json.loads(body)["events"]
                if not isinstance(events, list):
                    raise TypeError("events is not a list")
            except (ValueError, KeyError, TypeError):
                return self.reply(400, b'{"error":"bad batch"}')
            batch = self.headers.get("Tessera-Batch-Id")
            lines = [{"via": "batch", "event": e} for e in events]
            if batch is not None:
                for line in lines:
                    line["batch"] = batch
            self.record(lines)
            return self.reply(200)
        if self.path == "/v1/logs":
            try:
                request = json_format.Parse(body, ExportLogsServiceRequest())
            except (json_format.ParseError, ValueError) as err:
                return self.reply(400, json.dumps({"error": str(err)}).encode())
            self.record(list(otlp_records(request)))
            return self.reply(200)
        return self.reply(404, b'{"error":"not found"}')

    def do_GET(self):
        self.reply(404, b'{"error":"not found"}')

    def log_message(self, fmt, *args):
        sys.stderr.write("siem_receiver: " + (fmt % args) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--secret", default="")
    parser.add_argument("--refuse", default="")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.out = args.out
    server.secret = args.secret.encode("utf-8")
    server.refuse = args.refuse.encode("utf-8")
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        # The handshake then runs in the request's thread, not in accept().
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
