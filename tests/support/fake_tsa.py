"""A local RFC 3161 time-stamping authority: ``openssl ts -reply`` behind HTTP.

``POST /`` with an ``application/timestamp-query`` body answers the ``application/timestamp-reply``
that openssl makes, signed by a TSA certificate (extended key usage timeStamping) issued by the
throwaway code-signing CA of ``tests.support.signing.code_signing_ca``. ``mode``: ``succeed``, or
``down`` (every request answers 503). ``requests`` counts the queries it was sent.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.signing import openssl, timestamping_certificate

CONFIG = """\
[ tsa ]
default_tsa = km_test_tsa

[ km_test_tsa ]
serial = {d}/serial
crypto_device = builtin
signer_cert = {d}/tsa.crt
signer_key = {d}/tsa.key
certs = {ca}/ca.crt
signer_digest = sha256
default_policy = 1.3.6.1.4.1.4146.2.3
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@dataclass
class FakeTSA:
    url: str
    requests: int = 0


def _reply(query: bytes, d: Path) -> bytes:
    """openssl's reply to a timestamp query, made in ``d`` (certificates and configuration)."""
    (d / "query.tsq").write_bytes(query)
    openssl("ts", "-reply", "-config", "tsa.cnf", "-queryfile", "query.tsq", "-out", "reply.tsr", cwd=d)
    return (d / "reply.tsr").read_bytes()


@contextmanager
def fake_tsa(ca: Path, mode: str = "succeed") -> Iterator[FakeTSA]:
    with tempfile.TemporaryDirectory(prefix="km-tsa-") as tmp:
        d = Path(tmp)
        timestamping_certificate(ca, d)
        (d / "serial").write_text("01\n")
        (d / "tsa.cnf").write_text(CONFIG.format(d=d, ca=ca))
        lock = threading.Lock()
        tsa = FakeTSA("")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    tsa.requests += 1
                    reply = None if mode == "down" else _reply(query, d)
                if reply is None:
                    self.send_error(503, "time-stamping unavailable")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tsa.url = f"http://127.0.0.1:{server.server_address[1]}/"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield tsa
        finally:
            server.shutdown()
            server.server_close()


def timestamped_by(exe: Path, ca: Path) -> str | None:
    """The subject of the authority whose timestamp on ``exe`` ``osslsigncode verify`` checked
    against ``ca``; None when the signature has no verified timestamp."""
    cmd = ["osslsigncode", "verify", "-CAfile", str(ca / "ca.crt"), "-TSA-CAfile", str(ca / "ca.crt"),
           "-in", str(exe)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    if "Timestamp Server Signature verification: ok" not in out:
        return None
    section = out.split("Timestamp verified using:", 1)[-1]
    lines = [ln.strip() for ln in section.splitlines()]
    subjects = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Subject:")]
    return next((s for s in subjects if "time-stamping" in s), None)
