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


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(ca: Path, d: Path) -> None:
    """A TSA key and certificate issued by the CA in ``ca``, and openssl's TSA configuration."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
             "-subj", "/CN=km test time-stamping authority", cwd=d)  # fmt: skip
    (d / "ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=critical,timeStamping\n"
    )
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", str(ca / "ca.crt"), "-CAkey", str(ca / "ca.key"),
             "-CAcreateserial", "-out", "tsa.crt", "-days", "2", "-extfile", "ext", cwd=d)  # fmt: skip
    (d / "serial").write_text("01\n")
    (d / "tsa.cnf").write_text(CONFIG.format(d=d, ca=ca))


@contextmanager
def fake_tsa(ca: Path, mode: str = "succeed") -> Iterator[FakeTSA]:
    with tempfile.TemporaryDirectory(prefix="km-tsa-") as tmp:
        d = Path(tmp)
        _issue(ca, d)
        lock = threading.Lock()
        tsa = FakeTSA("")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    tsa.requests += 1
                    reply = None if mode == "down" else self._reply(query)
                if reply is None:
                    self.send_error(503, "time-stamping unavailable")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def _reply(self, query: bytes) -> bytes:
                (d / "query.tsq").write_bytes(query)
                _openssl("ts", "-reply", "-config", str(d / "tsa.cnf"), "-queryfile", "query.tsq",
                         "-out", "reply.tsr", cwd=d)  # fmt: skip
                return (d / "reply.tsr").read_bytes()

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
