"""Test helpers that are real: a local origin server that plays many image hosts.

    from mediatool.testing import OriginServer

    with OriginServer() as origin:
        origin.add("http://static.1sapp.com/a.jpg", body=jpeg_bytes)
        # HTTP_PROXY=origin.proxy_url, SSL_CERT_FILE=origin.ca_path reach it as that host

Names are imported on first use, so `python -m mediatool.testing.origin` runs cleanly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mediatool.testing.origin import OriginServer, RecordedRequest, Route, closed_ports
    from mediatool.testing.site import save_site

__all__ = ["OriginServer", "RecordedRequest", "Route", "closed_ports", "save_site"]
_WHERE = {
    "OriginServer": "origin",
    "RecordedRequest": "origin",
    "Route": "origin",
    "closed_ports": "origin",
    "save_site": "site",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
