"""wsio: WebSocket and Socket.IO for asyncio, server and client, in one package."""

__version__ = "0.1.0"

__all__ = ["__version__"]
