"""Falco's http_output on the wire: one alert, one POST of its Falco JSON document.

What falcosidekick (and anything else behind Falco's http_output) accepts. Shared by the
agent's own http sender and the orchestrator's http output, so both speak it the same way:
the URL checks, the keep-alive connection, TLS with an optional CA bundle, and which
answers are worth a retry.
"""
from __future__ import annotations

import http.client
import ssl
import urllib.parse

# Answers that may change on a retry; any other non-2xx refuses this alert for good.
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def parse_url(url: str) -> urllib.parse.SplitResult:
    """Validate an http(s)://HOST[:PORT]/PATH; ValueError naming what is wrong."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # an unclosed [ of an IPv6 address
        raise ValueError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad URL {url!r}: expected http(s)://HOST[:PORT]/PATH")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"bad URL {url!r}: the port is not a number 1-65535") from None
    if any(c in url for c in "\r\n\t "):
        raise ValueError(f"bad URL {url!r}: whitespace in it")
    return parts


def is_url(text: str | None) -> bool:
    return bool(text) and text.startswith(("http://", "https://"))


class FalcoHttp:
    """A keep-alive connection that POSTs JSON bodies; reconnects after any failure."""

    def __init__(self, url: str, timeout: float = 10.0, ca_file: str | None = None):
        self.url = url
        self._parts = parse_url(url)
        self._path = (self._parts.path or "/") + (f"?{self._parts.query}" if self._parts.query else "")
        self._timeout = timeout
        self._ssl = None
        if self._parts.scheme == "https":
            self._ssl = ssl.create_default_context(cafile=ca_file)
            self._ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        host, port = self._parts.hostname, self._parts.port
        if self._ssl is not None:
            return http.client.HTTPSConnection(host, port, timeout=self._timeout, context=self._ssl)
        return http.client.HTTPConnection(host, port, timeout=self._timeout)

    def post(self, body: bytes) -> int:
        """The HTTP status; OSError or HTTPException when there was no answer."""
        if self._conn is None:
            self._conn = self._connect()
        try:
            self._conn.request("POST", self._path, body=body,
                               headers={"Content-Type": "application/json"})
            resp = self._conn.getresponse()
            resp.read()
            if resp.will_close:
                self.close()
            return resp.status
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
