"""A minimal ctypes binding of libuplink (uplink-c), the native Storj client library.

The ``storj-uplink`` package ships a prebuilt ``libuplink.so`` (so no Go toolchain is
needed), but its Python wrapper cannot upload: ``Upload.write`` passes a pointer *type*
instead of the data, and it has no ``request_access_with_passphrase``. So ZK-ADAPT takes
only the library file from that package and binds the dozen C functions it needs here,
declared exactly as in uplink-c's ``uplink_definitions.h``. Every result struct is freed
with its ``uplink_free_*`` function, and every ``UplinkError`` becomes :class:`UplinkError`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Iterator
from ctypes import POINTER, Structure, c_bool, c_char_p, c_int32, c_int64, c_size_t, c_void_p
from pathlib import Path
from typing import Any

from zkadapt.errors import ConfigError

# error codes (uplink_definitions.h); io.EOF arrives as C's EOF, -1
EOF = -1
INTERNAL = 0x02
CANCELED = 0x03
TOO_MANY_REQUESTS = 0x05
BANDWIDTH_LIMIT_EXCEEDED = 0x06
PERMISSION_DENIED = 0x09
BUCKET_NOT_FOUND = 0x13
OBJECT_NOT_FOUND = 0x21
_READ_SIZE = 1 << 20


class _Handle(Structure):
    _fields_ = [("_handle", c_size_t)]


class _Config(Structure):
    _fields_ = [
        ("user_agent", c_char_p),
        ("dial_timeout_milliseconds", c_int32),
        ("temp_directory", c_char_p),
    ]


class _Error(Structure):
    _fields_ = [("code", c_int32), ("message", c_char_p)]


class _SystemMetadata(Structure):
    _fields_ = [("created", c_int64), ("expires", c_int64), ("content_length", c_int64)]


class _CustomMetadata(Structure):
    _fields_ = [("entries", c_void_p), ("count", c_size_t)]


class _Object(Structure):
    _fields_ = [
        ("key", c_char_p),
        ("is_prefix", c_bool),
        ("system", _SystemMetadata),
        ("custom", _CustomMetadata),
    ]


class _ListObjectsOptions(Structure):
    _fields_ = [
        ("prefix", c_char_p),
        ("cursor", c_char_p),
        ("recursive", c_bool),
        ("system", c_bool),
        ("custom", c_bool),
    ]


def _result(name: str, value_type: Any) -> type[Structure]:
    return type(
        name, (Structure,), {"_fields_": [("value", value_type), ("error", POINTER(_Error))]}
    )


_AccessResult = _result("_AccessResult", POINTER(_Handle))
_ProjectResult = _result("_ProjectResult", POINTER(_Handle))
_BucketResult = _result("_BucketResult", c_void_p)
_ObjectResult = _result("_ObjectResult", POINTER(_Object))
_UploadResult = _result("_UploadResult", POINTER(_Handle))
_DownloadResult = _result("_DownloadResult", POINTER(_Handle))
_WriteResult = _result("_WriteResult", c_size_t)
_ReadResult = _result("_ReadResult", c_size_t)

_H = POINTER(_Handle)
_E = POINTER(_Error)
_SIGNATURES: dict[str, tuple[list[Any], Any]] = {
    "uplink_parse_access": ([c_char_p], _AccessResult),
    "uplink_config_request_access_with_passphrase": (
        [_Config, c_char_p, c_char_p, c_char_p],
        _AccessResult,
    ),
    "uplink_config_open_project": ([_Config, _H], _ProjectResult),
    "uplink_close_project": ([_H], _E),
    "uplink_stat_bucket": ([_H, c_char_p], _BucketResult),
    "uplink_ensure_bucket": ([_H, c_char_p], _BucketResult),
    "uplink_stat_object": ([_H, c_char_p, c_char_p], _ObjectResult),
    "uplink_upload_object": ([_H, c_char_p, c_char_p, c_void_p], _UploadResult),
    "uplink_upload_write": ([_H, c_void_p, c_size_t], _WriteResult),
    "uplink_upload_commit": ([_H], _E),
    "uplink_upload_abort": ([_H], _E),
    "uplink_download_object": ([_H, c_char_p, c_char_p, c_void_p], _DownloadResult),
    "uplink_download_read": ([_H, c_void_p, c_size_t], _ReadResult),
    "uplink_close_download": ([_H], _E),
    "uplink_list_objects": ([_H, c_char_p, POINTER(_ListObjectsOptions)], _H),
    "uplink_object_iterator_next": ([_H], c_bool),
    "uplink_object_iterator_item": ([_H], POINTER(_Object)),
    "uplink_object_iterator_err": ([_H], _E),
    "uplink_free_object_iterator": ([_H], None),
    "uplink_free_object": ([POINTER(_Object)], None),
    "uplink_free_error": ([_E], None),
    "uplink_free_access_result": ([_AccessResult], None),
    "uplink_free_bucket_result": ([_BucketResult], None),
    "uplink_free_object_result": ([_ObjectResult], None),
    "uplink_free_upload_result": ([_UploadResult], None),
    "uplink_free_download_result": ([_DownloadResult], None),
    "uplink_free_write_result": ([_WriteResult], None),
    "uplink_free_read_result": ([_ReadResult], None),
}


class UplinkError(Exception):
    """An error returned by libuplink: ``code`` is one of the constants above."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{message} (uplink error {code:#x})")


def library_path() -> Path:
    """Where the ``storj-uplink`` package keeps ``libuplink.so``.

    Raises:
        ConfigError: the package (the ``zkadapt[storj]`` extra) is not installed.
    """
    try:
        import storj_uplink
    except ImportError:
        raise ConfigError(
            "storage.backend", "'storj' needs storj-uplink: pip install 'zkadapt[storj]'"
        ) from None
    path = Path(storj_uplink.__file__).parent / "libuplink.so"
    if not path.is_file():
        raise ConfigError("storage.backend", f"storj-uplink has no libuplink.so at {path}")
    return path


class Uplink:
    """The loaded library; methods take and return opaque handles."""

    def __init__(self, path: Path | None = None, *, dial_timeout_ms: int = 10_000) -> None:
        self._lib = ctypes.CDLL(str(path or library_path()))
        for name, (argtypes, restype) in _SIGNATURES.items():
            fn = getattr(self._lib, name)
            fn.argtypes, fn.restype = argtypes, restype
        self._config = _Config(b"zkadapt", dial_timeout_ms, None)
        self._keep: list[Any] = []  # access results must outlive the projects opened from them

    # -- access and project ----------------------------------------------------------------

    def parse_access(self, serialized: str) -> Any:
        """An access handle from a serialized access grant."""
        return self._access(self._lib.uplink_parse_access(serialized.encode()))

    def request_access(self, satellite: str, api_key: str, passphrase: str) -> Any:
        """An access handle from an API key, satellite address and passphrase (dials out)."""
        fn = self._lib.uplink_config_request_access_with_passphrase
        return self._access(
            fn(self._config, satellite.encode(), api_key.encode(), passphrase.encode())
        )

    def open_project(self, access: Any) -> Any:
        """Open the project of ``access`` (lazy: the first request dials the satellite)."""
        result = self._lib.uplink_config_open_project(self._config, access)
        self._raise(result.error)
        return result.value

    def close_project(self, project: Any) -> None:
        self._check(self._lib.uplink_close_project(project))

    # -- buckets and objects ---------------------------------------------------------------

    def stat_bucket(self, project: Any, bucket: str, *, create: bool = False) -> None:
        fn = self._lib.uplink_ensure_bucket if create else self._lib.uplink_stat_bucket
        result = fn(project, bucket.encode())
        try:
            self._raise(result.error)
        finally:
            self._lib.uplink_free_bucket_result(result)

    def object_size(self, project: Any, bucket: str, key: str) -> int | None:
        """The object's size, or None when it does not exist."""
        result = self._lib.uplink_stat_object(project, bucket.encode(), key.encode())
        try:
            if result.error and result.error.contents.code == OBJECT_NOT_FOUND:
                return None
            self._raise(result.error)
            return int(result.value.contents.system.content_length)
        finally:
            self._lib.uplink_free_object_result(result)

    def upload(self, project: Any, bucket: str, key: str, chunks: Iterable[bytes]) -> None:
        """Upload ``chunks`` and commit; the object appears only on commit, else is aborted."""
        result = self._lib.uplink_upload_object(project, bucket.encode(), key.encode(), None)
        try:
            self._raise(result.error)
            upload = result.value
            try:
                for chunk in chunks:
                    self._write_all(upload, chunk)
                self._check(self._lib.uplink_upload_commit(upload))
            except BaseException:
                self._lib.uplink_free_error(self._lib.uplink_upload_abort(upload))
                raise
        finally:
            self._lib.uplink_free_upload_result(result)

    def download(self, project: Any, bucket: str, key: str) -> Iterator[bytes]:
        """Yield the object's bytes in chunks of up to 1 MiB."""
        result = self._lib.uplink_download_object(project, bucket.encode(), key.encode(), None)
        try:
            self._raise(result.error)
            buffer = ctypes.create_string_buffer(_READ_SIZE)
            while True:
                read = self._lib.uplink_download_read(result.value, buffer, _READ_SIZE)
                try:
                    if read.value:
                        yield buffer.raw[: read.value]
                    if read.error:
                        if read.error.contents.code == EOF:
                            return
                        self._raise(read.error)
                finally:
                    self._lib.uplink_free_read_result(read)
        finally:
            self._lib.uplink_free_download_result(result)  # also closes the download

    def list_keys(self, project: Any, bucket: str, prefix: str) -> list[str]:
        """Every object key under ``prefix`` (recursive)."""
        options = _ListObjectsOptions(prefix.encode(), None, True, False, False)
        iterator = self._lib.uplink_list_objects(project, bucket.encode(), ctypes.byref(options))
        keys: list[str] = []
        try:
            while self._lib.uplink_object_iterator_next(iterator):
                item = self._lib.uplink_object_iterator_item(iterator)
                keys.append(item.contents.key.decode())
                self._lib.uplink_free_object(item)
            self._check(self._lib.uplink_object_iterator_err(iterator))
        finally:
            self._lib.uplink_free_object_iterator(iterator)
        return keys

    # -- helpers ---------------------------------------------------------------------------

    def _access(self, result: Any) -> Any:
        if result.error:
            try:
                self._raise(result.error)
            finally:
                self._lib.uplink_free_access_result(result)
        self._keep.append(result)
        return result.value

    def _write_all(self, upload: Any, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            data = ctypes.c_char_p(bytes(view))
            written = self._lib.uplink_upload_write(upload, data, len(view))
            try:
                self._raise(written.error)
                if written.value == 0:
                    raise UplinkError(INTERNAL, "upload wrote no bytes")
                view = view[written.value :]
            finally:
                self._lib.uplink_free_write_result(written)

    def _check(self, error: Any) -> None:
        """Raise and free a bare ``UplinkError*`` (NULL means success)."""
        if error:
            try:
                self._raise(error)
            finally:
                self._lib.uplink_free_error(error)

    @staticmethod
    def _raise(error: Any) -> None:
        if error:
            message = error.contents.message
            raise UplinkError(
                int(error.contents.code), message.decode(errors="replace") if message else ""
            )
