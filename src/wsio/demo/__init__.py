"""The demo chat app that ``wsio demo`` serves.

:class:`ChatApp` (in :mod:`wsio.demo.chat`) builds the Socket.IO server; the
page (``static/``: plain HTML, CSS and JavaScript, no build step) uses the
official ``socket.io-client`` browser bundle, which the server hands out at
``/socket.io/socket.io.js`` (see :data:`CLIENT_HINT` for where it comes from).
"""

from __future__ import annotations

from .chat import HISTORY_SIZE, IMAGE_TYPES, MAX_IMAGE, MAX_TEXT, STATIC_DIR, ChatApp

__all__ = [
    "CLIENT_HINT",
    "HISTORY_SIZE",
    "IMAGE_TYPES",
    "MAX_IMAGE",
    "MAX_TEXT",
    "STATIC_DIR",
    "ChatApp",
]

CLIENT_HINT = """\
The demo page needs the official Socket.IO browser client, from the npm package
socket.io-client. wsio looks for its dist/ directory in this order:
  1. --client-dist DIR
  2. the WSIO_CLIENT_DIST environment variable
  3. ./node_modules/socket.io-client/dist (below the current directory)
To get it, run in this directory:
  npm install socket.io-client@4
or, from a wsio source checkout, start the demo with scripts/run.sh, which installs
it under tests/interop/node_modules and sets WSIO_CLIENT_DIST."""
"""What ``wsio demo`` prints when the browser bundle cannot be found."""
