"""A BlobStore on the local file system: ``<root>/<bucket>/<key>``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["FileBlobStore"]


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def _path(self, bucket: str, key: str) -> Path:
        path = (self._root / bucket / key).resolve()
        if not path.is_relative_to(self._root):
            raise ValueError("bucket and key must stay inside the blob store")
        return path

    def put(self, bucket: str, key: str, data: bytes) -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, bucket: str, key: str) -> bytes | None:
        try:
            path = self._path(bucket, key)
        except ValueError:
            return None
        return path.read_bytes() if path.is_file() else None
