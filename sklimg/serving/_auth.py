"""``--token``: every request needs ``Authorization: Bearer TOKEN``, but the health
check and the page's own files (the same bytes in every installation; the page sends
the token with its requests to the API)."""

from __future__ import annotations

import hmac
import json

__all__ = ["OPEN_PATHS", "BearerToken"]

#: Paths answered without the token: nothing in them depends on the model.
OPEN_PATHS = ("/health", "/", "/static/")


class BearerToken:
    """ASGI middleware that refuses requests without the token with a 401.

    Parameters
    ----------
    app : ASGI application
    token : str
    """

    def __init__(self, app, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or _is_open(_route_path(scope)):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        # compare_digest takes the same time wherever the strings differ.
        if hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        problem = "has a wrong token" if given else "has no Authorization header"
        body = json.dumps(
            {
                "error": {
                    "code": "unauthorized",
                    "message": (
                        f"The request {problem}; this server needs 'Authorization: Bearer "
                        f"TOKEN' with the token it was started with (sklimg serve --token, "
                        f"or SKLIMG_SERVE_TOKEN)."
                    ),
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="sklimg"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _route_path(scope) -> str:
    """The path within this application: mounted under a prefix, the scope's path
    still holds the prefix, and its root_path names it."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS[:2] or path.startswith(OPEN_PATHS[2])
