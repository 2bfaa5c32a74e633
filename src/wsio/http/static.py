"""Serving static files next to a real-time endpoint (development-grade, safe paths)."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping

from .request import Request, Response

__all__ = ["StaticFiles"]


class StaticFiles:
    """Maps URL prefixes to files or directories.

    ``{"/": "public/index.html", "/static": "public/static"}``: a prefix that
    maps to a file serves that file; one that maps to a directory serves the
    files below it (``index.html`` for the directory itself). Paths that
    escape the directory are refused.
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.routes = sorted(
            (
                (prefix.rstrip("/") or "/", os.path.abspath(target))
                for prefix, target in mapping.items()
            ),
            key=lambda item: -len(item[0]),
        )

    def resolve(self, path: str) -> str | None:
        """The file for a URL path, or None."""
        for prefix, target in self.routes:
            if prefix == "/":
                rest = path
            elif path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix) :]
            else:
                continue
            if os.path.isfile(target):
                if rest in ("", "/"):
                    return target
                continue
            candidate = os.path.abspath(os.path.join(target, rest.lstrip("/")))
            if candidate != target and not candidate.startswith(target + os.sep):
                return None
            if os.path.isdir(candidate):
                candidate = os.path.join(candidate, "index.html")
            if os.path.isfile(candidate):
                return candidate
        return None

    def __call__(self, request: Request) -> Response | None:
        """The response for *request*, or None if no file matches."""
        if request.method not in ("GET", "HEAD"):
            return None
        filename = self.resolve(request.path)
        if filename is None:
            return None
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript",):
            content_type += "; charset=utf-8"
        with open(filename, "rb") as f:
            body = f.read()
        return Response(200, body, [("Cache-Control", "no-cache")], content_type)
