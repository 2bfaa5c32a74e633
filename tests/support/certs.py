"""Self-signed certificates for TLS tests, made with the ``openssl`` command."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from pathlib import Path

from support.procs import require_binary


def _subject_alt_name(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"DNS:{host}"
    return f"IP:{host}"


def make_cert(directory: Path, hosts: Sequence[str] = ("127.0.0.1",)) -> tuple[Path, Path]:
    """A self-signed certificate for *hosts* (the first one is the common name).

    Writes ``cert.pem`` and ``key.pem`` (P-256, valid for a day) into *directory*;
    returns ``(cert, key)``. Each host is a subject alternative name: ``IP:`` for
    an address, ``DNS:`` for a name.
    """
    openssl = require_binary("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    names = ",".join(map(_subject_alt_name, hosts))
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", f"/CN={hosts[0]}", "-addext", f"subjectAltName={names}"],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key
