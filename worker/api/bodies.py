"""What a request carries besides its URL, built from requests-style keyword arguments.

Pure encoding for :class:`horde.worker.api.client.HttpSession`: the body and its content
type from ``data``, ``json`` and ``files`` (a form, JSON, raw bytes, or multipart/form-data
with the parts requests builds), the ``Authorization`` value from ``auth``, the cookie pairs
from ``cookies`` and the query string from ``params``. Nothing here does I/O beyond reading
file-like objects a script passes.

Imports: the standard library only.
"""

from __future__ import annotations

import json as jsonlib
import os
import uuid
from base64 import b64encode
from collections.abc import Iterable, Mapping
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlencode

__all__ = ["basic_auth", "body_bytes", "cookie_pairs", "encode_body", "query_string"]

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def basic_auth(user: str | bytes, password: str | bytes) -> str:
    """The ``Authorization`` value for HTTP Basic credentials (latin-1, as requests does)."""
    raw = [part.encode("latin-1") if isinstance(part, str) else part for part in (user, password)]
    return "Basic " + b64encode(b":".join(raw)).decode("ascii")


def auth_value(auth: Any) -> str:
    """The ``Authorization`` value for ``auth``: a (user, password) pair, or an object with
    ``username`` and ``password`` (requests' ``HTTPBasicAuth``); anything else is refused."""
    if isinstance(auth, tuple | list) and len(auth) == 2:
        return basic_auth(auth[0], auth[1])
    if hasattr(auth, "username") and hasattr(auth, "password"):
        return basic_auth(auth.username, auth.password)
    raise TypeError(
        f"auth={auth!r}: horde sends HTTP Basic credentials given as a (user, password) "
        "tuple or requests' HTTPBasicAuth; set an Authorization header for other schemes"
    )


def body_bytes(body: Any) -> bytes:
    """A request body as bytes: str, bytes-like, a file-like object, or an iterable of chunks."""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(part.encode("utf-8") if isinstance(part, str) else part for part in body)


def _pairs(fields: Any) -> list[tuple[Any, Any]]:
    """A mapping or an iterable of pairs as a list of pairs (a list value repeats the key)."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    pairs: list[tuple[Any, Any]] = []
    for key, value in items:
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, each) for each in values if each is not None)
    return pairs


def query_string(params: Any) -> str:
    """``params`` (a mapping, pairs, str or bytes) as a query string; None values are left
    out, as requests does."""
    if isinstance(params, bytes):
        return params.decode()
    if isinstance(params, str):
        return params
    return urlencode(_pairs(params), doseq=True)


def encode_body(data: Any, json: Any, files: Any) -> tuple[bytes | None, str | None]:
    """The body bytes and their content type (None: leave the header unset).

    ``files`` makes a multipart/form-data body of ``data``'s fields then the files;
    otherwise a mapping or list of pairs in ``data`` is a form, other ``data`` is sent as
    it is, and ``json`` (used only without ``data``) is serialized as JSON.
    """
    if files:
        return multipart(data or {}, files)
    if data is not None:
        if isinstance(data, Mapping) or (isinstance(data, list) and data):
            return urlencode(_pairs(data), doseq=True).encode("ascii"), FORM
        return body_bytes(data), None
    if json is not None:
        return jsonlib.dumps(json).encode("utf-8"), JSON
    return None, None


def _file_part(name: str, value: Any) -> tuple[str, bytes, str | None, Mapping[str, str]]:
    """(filename, content, content type, extra headers) of one ``files`` entry, as requests
    reads ``value``: a file, or a tuple (filename, file[, content type[, headers]])."""
    content_type: str | None = None
    headers: Mapping[str, str] = {}
    if isinstance(value, tuple | list):
        filename, value, *rest = value
        if rest:
            content_type = rest[0]
        if len(rest) > 1:
            headers = rest[1] or {}
    else:
        given = getattr(value, "name", None)
        filename = os.path.basename(given) if isinstance(given, str) and given[:1] != "<" else name
    return str(filename) if filename is not None else name, body_bytes(value), content_type, headers


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def multipart(data: Any, files: Any) -> tuple[bytes, str]:
    """A multipart/form-data body: the fields of ``data``, then the parts of ``files``."""
    boundary = uuid.uuid4().hex
    lines: list[bytes] = []

    def part(disposition: str, content: bytes, extra: Iterable[tuple[str, str]]) -> None:
        lines.append(f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n".encode())
        for header, value in extra:
            lines.append(f"{header}: {value}\r\n".encode())
        lines.append(b"\r\n" + content + b"\r\n")

    for key, value in _pairs(data):
        content = value if isinstance(value, bytes) else str(value).encode("utf-8")
        part(f'name="{_quoted(str(key))}"', content, ())
    for key, value in files.items() if isinstance(files, Mapping) else files:
        filename, content, content_type, headers = _file_part(str(key), value)
        extra = [("Content-Type", content_type)] if content_type else []
        extra.extend(headers.items())
        disposition = f'name="{_quoted(str(key))}"; filename="{_quoted(filename)}"'
        part(disposition, content, extra)
    lines.append(f"--{boundary}--\r\n".encode())
    return b"".join(lines), f"multipart/form-data; boundary={boundary}"


def cookie_pairs(cookies: Any) -> list[str]:
    """``name=value`` pairs of per-request ``cookies``: a mapping or a ``CookieJar``."""
    if isinstance(cookies, CookieJar) and not isinstance(cookies, Mapping):
        return [f"{cookie.name}={cookie.value}" for cookie in cookies]
    return [f"{key}={value}" for key, value in cookies.items()]
