"""Test helpers that are real: a local origin server that plays many image hosts.

from mediatool.testing import OriginServer

with OriginServer() as origin:
    origin.add("http://static.1sapp.com/a.jpg", body=jpeg_bytes)
    # HTTP_PROXY=origin.proxy_url, SSL_CERT_FILE=origin.ca_path reach it as that host
"""

from mediatool.testing.origin import OriginServer, RecordedRequest, Route
from mediatool.testing.site import save_site

__all__ = ["OriginServer", "RecordedRequest", "Route", "save_site"]
