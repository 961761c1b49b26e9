"""The object store: originals and thumbnails in an S3 bucket (`--cache s3://bucket/prefix`).

A `MediaStore` with the layout of `store.py`: the object of a stored file is keyed
`<prefix>/<relpath>` (e.g. `blog/originals/ab/cd/<sha256>.jpg`), so a public URL of the bucket
plus the relpath is the file's URL (`rewrite --base-url`). Any S3-compatible endpoint works:
boto3 reads AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (or
AWS_REGION) and AWS_PROFILE as usual.

Writes are put-if-absent (`If-None-Match: *`): a key is written once, and a 412 (another writer
stored the same bytes first) is success. So runs on different manifests may share one bucket.

The manifest and everything in flight stay on this machine, in a state folder beside the
manifest (`<manifest folder>/.mediatool-s3/<manifest name>/`):

    lock       the run's lock (mediatool.lock): one writing run per manifest
    tmp/       downloads in progress (.part files), uploaded by `keep`
    local/     local copies of originals for analysis, and new thumbnails before their upload
               (the store's `root`); emptied by `prepare`

Which keys exist is listed once per run and top folder (one paginated listing of originals/,
one of thumbs/ when a thumbnail is asked for) and then kept up to date by this process, so
`has` asks no question of the endpoint per file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mediatool.errors import CacheNotWritable, ObjectStoreError, UsageError
from mediatool.files import publish, remove_stale_temp_files, temp_file_in
from mediatool.store import (
    EXTENSIONS,
    ORIGINALS,
    TEMP,
    ShardFolders,
    extension_of,
    original_relpath,
)

SCHEME = "s3://"
STATE_FOLDER = ".mediatool-s3"
LOCAL = "local"
BOTO3_MISSING = "--cache s3:// needs boto3: pip install 'mediatool[s3]'"
PRECONDITION_FAILED = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
MISSING_KEY = ("NoSuchKey", "404", "NotFound")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
READ_BLOCK = 1 << 20
# Served from a public bucket URL, an object needs its type (an SVG or a video with none does
# not show), and named by its bytes it never changes: browsers and CDNs may keep it for good.
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "ico": "image/vnd.microsoft.icon",
    "avif": "image/avif",
    "heic": "image/heic",
    "svg": "image/svg+xml",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "ogv": "video/ogg",
    "mov": "video/quicktime",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "pdf": "application/pdf",
    "vtt": "text/vtt",
}
CACHE_CONTROL = "public, max-age=31536000, immutable"


def is_s3_url(value: str) -> bool:
    """True for a cache given as an s3:// URL."""
    return value.startswith(SCHEME)


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix without slashes at its ends) of `s3://bucket[/prefix]`."""
    bucket, _, prefix = url.removeprefix(SCHEME).partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise UsageError(
            f"{url}: not an S3 bucket URL; write --cache s3://BUCKET/PREFIX "
            "(a bucket name of 3 to 63 lowercase letters, digits, dots and hyphens)."
        )
    return bucket, prefix.strip("/")


def content_type(relpath: str) -> str:
    """The Content-Type an object is served with, by the extension of its store path."""
    return CONTENT_TYPES.get(relpath.rpartition(".")[2], "application/octet-stream")


def state_dir_of(manifest: Path) -> Path:
    """The local state folder of an S3 store whose manifest is `manifest`."""
    return manifest.parent / STATE_FOLDER / manifest.name


class S3Store:
    """A MediaStore in an S3 bucket; the manifest is the local file `manifest`."""

    def __init__(self, url: str, manifest: Path, client: Any = None) -> None:
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self._manifest = manifest
        self.state_dir = state_dir_of(manifest)
        self.root = self.state_dir / LOCAL
        self._client = client
        self._lock = threading.Lock()  # the listing and the counters
        self._client_lock = threading.Lock()
        self._listed: dict[str, dict[str, int]] = {}  # top folder -> {relpath: size}
        self._folders = ShardFolders()
        self.puts = 0  # objects this store wrote
        self.lost_races = 0  # puts another writer had won (412): nothing written twice

    @property
    def temp_dir(self) -> Path:
        return self.state_dir / TEMP

    @property
    def manifest_path(self) -> Path:
        return self._manifest

    def prepare(self) -> None:
        """Create the local folders, drop what killed runs left there, list the bucket (a
        missing bucket or missing credentials end the run here, with one line)."""
        try:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            self._manifest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheNotWritable(
                f"{self.state_dir}: local state folder is not writable ({exc.strerror}); "
                "choose another --manifest or fix its permissions."
            ) from exc
        remove_stale_temp_files(self.temp_dir)
        self._drop_local_files()
        self._listing(ORIGINALS)

    def _drop_local_files(self) -> None:
        """Delete what a killed run left under `root` (the lock is ours: nobody else uses it).
        The emptied shard folders stay: removing hundreds of them costs more than they do."""
        for folder, _, names in os.walk(self.root):
            for name in names:
                Path(folder, name).unlink(missing_ok=True)

    # --- what is stored --------------------------------------------------------------------

    def key(self, relpath: str) -> str:
        """The object key of a store path."""
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def has(self, relpath: str) -> bool:
        return relpath in self._listing(relpath)

    def size(self, relpath: str) -> int:
        return self._listing(relpath).get(relpath, 0)

    def _listing(self, relpath: str) -> dict[str, int]:
        """The relpath and size of every stored object in the top folder of `relpath`
        (originals/ or thumbs/), listed once (paginated) when first asked: a re-run that finds
        every original stored never lists the thumbnails."""
        folder = relpath.partition("/")[0]
        with self._lock:
            if folder not in self._listed:
                self._listed[folder] = self._list_objects(folder)
            return self._listed[folder]

    def _list_objects(self, folder: str) -> dict[str, int]:
        start = f"{self.prefix}/" if self.prefix else ""
        sizes: dict[str, int] = {}
        paginator = self.client().get_paginator("list_objects_v2")
        with self._errors("list"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{start}{folder}/"):
                for item in page.get("Contents", ()):
                    sizes[item["Key"][len(start) :]] = int(item["Size"])
        return sizes

    def _known(self, relpath: str, size: int | None) -> None:
        """Keep the listing of what is stored true after a put (size) or a delete (None)."""
        with self._lock:
            listed = self._listed.get(relpath.partition("/")[0])
            if listed is None:
                return
            if size is None:
                listed.pop(relpath, None)
            else:
                listed[relpath] = size

    # --- writing ---------------------------------------------------------------------------

    def put_original(self, temp_path: Path, sha256: str, ext: str) -> str:
        """Upload a finished download (put-if-absent); it stays as the local copy analysis
        reads (`local_copy`, dropped by `release`). Returns its relpath."""
        relpath = original_relpath(sha256, ext)
        if self.has(relpath):
            temp_path.unlink(missing_ok=True)
            return relpath
        self.put_if_absent(relpath, temp_path)
        publish(temp_path, self.root / relpath, known_folders=self._folders)
        return relpath

    def keep(self, temp_path: Path, sha256: str, kind: str) -> str:
        """`put_original` for a download whose kind the fetcher sniffed (Fetcher's `keep`). A
        media file (video, PDF, ...) keeps no local copy: nothing analyzes it."""
        relpath = self.put_original(temp_path, sha256, extension_of(kind))
        if kind.upper() not in EXTENSIONS:
            self.release(relpath)
        return relpath

    def put_if_absent(self, relpath: str, path: Path) -> bool:
        """Store the file at `path` under `relpath` unless the key exists (If-None-Match: *).
        True when this call wrote it; False when another writer had (412): the same bytes,
        since keys are named by them."""
        size = path.stat().st_size
        try:
            self._put(relpath, path, IfNoneMatch="*")
        except _ClientError as exc:
            if _code(exc) not in PRECONDITION_FAILED:
                raise self._failure("put", relpath, exc) from exc
            with self._lock:
                self.lost_races += 1
            self._known(relpath, size)
            return False
        self._known(relpath, size)
        return True

    def _put(self, relpath: str, path: Path, **conditions: str) -> None:
        with path.open("rb") as body, self._errors("put", relpath, client_errors=False):
            self.client().put_object(
                Bucket=self.bucket,
                Key=self.key(relpath),
                Body=body,
                ContentType=content_type(relpath),
                CacheControl=CACHE_CONTROL,
                **conditions,
            )
        with self._lock:
            self.puts += 1

    def put_thumbnails(self, relpaths: Iterable[str], *, replace: bool) -> None:
        """Upload the thumbnails analysis wrote under `root` (at once, each on its own thread),
        then delete the local files. With `replace` (thumbs: new settings) an existing object
        is overwritten; else a stored one is left as it is (put-if-absent)."""
        made = [relpath for relpath in relpaths if (self.root / relpath).is_file()]
        if len(made) <= 1:
            for relpath in made:
                self._put_thumbnail(relpath, replace)
            return
        with ThreadPoolExecutor(len(made)) as uploads:
            for done in [uploads.submit(self._put_thumbnail, r, replace) for r in made]:
                done.result()

    def _put_thumbnail(self, relpath: str, replace: bool) -> None:
        local = self.root / relpath
        if replace:
            size = local.stat().st_size
            try:
                self._put(relpath, local)
            except _ClientError as exc:
                raise self._failure("put", relpath, exc) from exc
            self._known(relpath, size)
        elif not self.has(relpath):
            self.put_if_absent(relpath, local)
        local.unlink(missing_ok=True)

    def delete(self, relpath: str) -> None:
        with self._errors("delete", relpath):
            self.client().delete_object(Bucket=self.bucket, Key=self.key(relpath))
        self._known(relpath, None)

    # --- reading ---------------------------------------------------------------------------

    def local_copy(self, relpath: str) -> Path:
        """A local file with the stored bytes (downloaded to `root` unless it is there). For a
        missing object, the path where it would be: analysis then says it cannot read it, as
        for a missing file of the folder store."""
        local = self.root / relpath
        if local.is_file():
            return local
        try:
            with temp_file_in(self.temp_dir) as (handle, temp_path):
                for block in self._blocks(relpath):
                    handle.write(block)
        except FileNotFoundError:
            return local
        publish(temp_path, local, known_folders=self._folders)
        return local

    def release(self, relpath: str) -> None:
        """Drop the local copy of a stored file (the object stays)."""
        (self.root / relpath).unlink(missing_ok=True)

    def verify(self, relpath: str, sha256: str) -> bool:
        """True when the object exists and its bytes have the sha256 it is named for."""
        digest = hashlib.sha256()
        try:
            for block in self._blocks(relpath):
                digest.update(block)
        except FileNotFoundError:
            return False
        return digest.hexdigest() == sha256

    def _blocks(self, relpath: str) -> Iterable[bytes]:
        """The object's bytes in blocks; FileNotFoundError when there is no such key."""
        try:
            answer = self.client().get_object(Bucket=self.bucket, Key=self.key(relpath))
        except _ClientError as exc:
            if _code(exc) in MISSING_KEY:
                raise FileNotFoundError(f"{self.url}/{relpath}") from exc
            raise self._failure("get", relpath, exc) from exc
        except _OtherErrors as exc:
            raise self._failure("get", relpath, exc) from exc
        body = answer["Body"]
        try:
            yield from iter(lambda: body.read(READ_BLOCK), b"")
        finally:
            body.close()

    # --- the client and its errors ---------------------------------------------------------

    def client(self) -> Any:
        """The boto3 S3 client (made once; boto3 clients may be shared between threads)."""
        with self._client_lock:
            if self._client is None:
                self._client = make_client(self.url)
            return self._client

    @contextlib.contextmanager
    def _errors(
        self, operation: str, relpath: str = "", *, client_errors: bool = True
    ) -> Iterator[None]:
        """Within the block, a botocore error becomes the one-line ObjectStoreError (a
        ClientError only when `client_errors`: else the caller looks at its code)."""
        try:
            yield
        except _ClientError as exc:
            if not client_errors:
                raise
            raise self._failure(operation, relpath, exc) from exc
        except _OtherErrors as exc:
            raise self._failure(operation, relpath, exc) from exc

    def _failure(self, operation: str, relpath: str, exc: BaseException) -> ObjectStoreError:
        """The one-line fatal error for a failed call: what failed and what to do."""
        where = f"{self.url}/{relpath}" if relpath else self.url
        name = type(exc).__name__
        code = _code(exc) if isinstance(exc, _ClientError) else name
        if code in ("NoSuchBucket",):
            return ObjectStoreError(
                f"{where}: bucket {self.bucket!r} does not exist at {_endpoint()}; create it "
                "or fix --cache (and AWS_ENDPOINT_URL)."
            )
        if name in ("NoCredentialsError", "PartialCredentialsError", "ProfileNotFound"):
            return ObjectStoreError(
                f"{where}: no usable AWS credentials ({exc}); set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE."
            )
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            return ObjectStoreError(
                f"{where}: access to bucket {self.bucket!r} denied ({code}); check the "
                "credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and the bucket's policy."
            )
        if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
            return ObjectStoreError(
                f"{where}: cannot reach {_endpoint()} ({name}); check AWS_ENDPOINT_URL and "
                "the network, then run again."
            )
        return ObjectStoreError(f"{where}: {operation} failed ({code}: {exc}); run again.")


def make_client(url: str) -> Any:
    """A boto3 S3 client for the store at `url`, configured from the environment
    (AWS_ENDPOINT_URL, credentials, AWS_DEFAULT_REGION or AWS_REGION, AWS_PROFILE); UsageError
    without boto3."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        raise UsageError(BOTO3_MISSING) from exc
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    config = Config(max_pool_connections=64, retries={"mode": "standard", "max_attempts": 5})
    try:
        session = boto3.session.Session(region_name=region)
        return session.client("s3", endpoint_url=_endpoint_or_none(), config=config)
    except BotoCoreError as exc:  # ProfileNotFound: AWS_PROFILE names no profile, ...
        raise ObjectStoreError(
            f"{url}: cannot set up the S3 client ({exc}); fix AWS_PROFILE or ~/.aws/config."
        ) from exc


def _endpoint_or_none() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _endpoint() -> str:
    return _endpoint_or_none() or "AWS S3"


def _code(exc: BaseException) -> str:
    """The error code of a botocore ClientError ("NoSuchBucket", "PreconditionFailed", ...)."""
    response = getattr(exc, "response", {})
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    return str(response.get("Error", {}).get("Code") or status)


def _error_classes() -> tuple[type[BaseException], tuple[type[BaseException], ...]]:
    """(ClientError, the other botocore errors), or placeholders without botocore."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return _NoBotocore, (_NoBotocore,)
    return ClientError, (BotoCoreError,)


class _NoBotocore(Exception):
    """Stands in for botocore's errors when it is not installed (nothing raises it)."""


_ClientError, _OtherErrors = _error_classes()
