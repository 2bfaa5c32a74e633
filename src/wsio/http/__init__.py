"""The built-in HTTP/1.1 server (asyncio.Protocol + httptools) and its request objects."""

from .headers import Headers
from .request import Request, Response
from .server import HTTPConnection, HTTPServer, Limits

__all__ = ["HTTPConnection", "HTTPServer", "Headers", "Limits", "Request", "Response"]
