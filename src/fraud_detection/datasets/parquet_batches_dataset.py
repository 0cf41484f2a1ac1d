"""``ParquetBatchesDataset``: a folder of parquet batches that only grows.

A stream is ingested in batches (one per run). Saving a batch over the previous one
would drop everything ingested before it once the consumer offsets have moved on, so
each ``save`` adds a file and ``load`` returns every batch, oldest first, without
repeated keys. A batch read twice (the run died after persisting it but before the
offsets were committed) never doubles a row, on load nor on disk: ``save`` leaves out
the rows whose key an earlier batch already holds, and a batch whose content is that
of an earlier one is not written again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from pathlib import PurePosixPath
from typing import Any

import fsspec
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str, get_protocol_and_path

logger = logging.getLogger(__name__)

_PREFIX = "batch-"
_SUFFIX = ".parquet"


class ParquetBatchesDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Append-only parquet batches in a folder (local or any fsspec filesystem).

    Example catalog entry::

        validated_transactions:
          type: fraud_detection.datasets.parquet_batches_dataset.ParquetBatchesDataset
          path: data/02_intermediate/validated_batches
          unique_key: transaction_id

    Files are named ``batch-<time ns>-<content hash>.parquet`` so they sort in save
    order. A batch is serialised in memory first, then written in one go: on a local
    disk under a temporary name, synced and renamed (a kill leaves no half batch, and
    the next save removes what a killed save left); on an object store as one object
    (a put is atomic). An empty batch is not written unless the folder has none yet
    (it keeps the columns for the first load).
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {"index": False}

    def __init__(  # noqa: PLR0913
        self,
        *,
        path: str,
        unique_key: str | list[str] | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates a new instance of ``ParquetBatchesDataset``.

        Args:
            path: Folder of the batches, with an optional protocol (``s3://...``).
            unique_key: Column(s) identifying a row; on load, a row whose key was seen
                in an earlier batch (or earlier in the same one) is dropped.
            load_args: Passed to ``pandas.read_parquet`` for each batch.
            save_args: Passed to ``DataFrame.to_parquet``.
            credentials: Passed to the fsspec filesystem.
            fs_args: Extra fsspec filesystem arguments.
            metadata: Free-form metadata, ignored by the dataset.
        """
        protocol, root = get_protocol_and_path(path)
        self._protocol = protocol
        self._root = PurePosixPath(root)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self._unique_key = [unique_key] if isinstance(unique_key, str) else list(unique_key or [])
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self.metadata = metadata

    def _batches(self) -> list[str]:
        pattern = get_filepath_str(self._root / f"{_PREFIX}*{_SUFFIX}", self._protocol)
        return sorted(self._fs.glob(pattern))

    def load(self) -> pd.DataFrame:
        files = self._batches()
        if not files:
            raise DatasetError(f"No batch in {self._root} yet: run the node that writes it first")
        frames = []
        for file in files:
            with self._fs.open(file, "rb") as handle:
                frames.append(pd.read_parquet(handle, **self._load_args))
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        if self._unique_key:
            repeated = frame.duplicated(subset=self._unique_key, keep="first").to_numpy()
            if repeated.any():
                logger.info(
                    "Dropped %d rows of %s whose %s already appeared in an earlier batch",
                    int(repeated.sum()),
                    self._root,
                    self._unique_key,
                )
                frame = frame.loc[~repeated].reset_index(drop=True)
        logger.info("Loaded %d rows from %d batch(es) in %s", len(frame), len(files), self._root)
        return frame

    def save(self, data: pd.DataFrame) -> None:
        existing = self._batches()
        if existing and self._unique_key and not data.empty:
            data = self._new_rows(data, existing)
        if data.empty and existing:
            logger.info("Empty batch: nothing added to %s", self._root)
            return
        buffer = io.BytesIO()
        data.to_parquet(buffer, **self._save_args)
        # The same rows serialise to the same bytes: a batch written again is found.
        digest = hashlib.sha256(buffer.getbuffer()).hexdigest()[:16]
        if any(file.endswith(f"-{digest}{_SUFFIX}") for file in existing):
            logger.info("A batch with this content is already in %s: not written again", self._root)
            return
        name = f"{_PREFIX}{time.time_ns():020d}-{digest}{_SUFFIX}"
        folder = get_filepath_str(self._root, self._protocol)
        self._fs.makedirs(folder, exist_ok=True)
        final = get_filepath_str(self._root / name, self._protocol)
        if self._protocol == "file":
            self._write_local(folder, name, final, buffer.getvalue())
        else:
            self._fs.pipe_file(final, buffer.getvalue())
        logger.info("Added a batch of %d rows to %s (%s)", len(data), self._root, name)

    def _new_rows(self, data: pd.DataFrame, existing: list[str]) -> pd.DataFrame:
        """The rows of ``data`` whose key no earlier batch holds."""
        keys = []
        for file in existing:
            with self._fs.open(file, "rb") as handle:
                keys.append(pd.read_parquet(handle, columns=self._unique_key))
        known = pd.MultiIndex.from_frame(pd.concat(keys, ignore_index=True))
        seen = pd.MultiIndex.from_frame(data[self._unique_key]).isin(known)
        if seen.any():
            logger.info(
                "%d of %d rows already in %s (same %s; a batch read again): not written twice",
                int(seen.sum()),
                len(data),
                self._root,
                self._unique_key,
            )
            data = data.loc[~seen]
        return data

    def _write_local(self, folder: str, name: str, final: str, payload: bytes) -> None:
        for stale in self._fs.glob(f"{folder}/.{_PREFIX}*{_SUFFIX}.partial"):
            logger.warning("Removing %s, left by a save that did not finish", stale)
            self._fs.rm(stale)
        partial = os.path.join(folder, f".{name}.partial")
        with open(partial, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, final)

    def _exists(self) -> bool:
        return bool(self._batches())

    def _describe(self) -> dict[str, Any]:
        return {
            "path": str(self._root),
            "protocol": self._protocol,
            "unique_key": self._unique_key,
            "load_args": self._load_args,
            "save_args": self._save_args,
        }
