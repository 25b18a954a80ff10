"""The running city node: config, key, stores, the single writer and its background loops.

:class:`Node` ties together what the HTTP server, the admin socket and the offline CLI share:

* the writer :class:`~node.store.Store` (holding the data directory's lock) and its
  :class:`~node.ingest.Writer`, run by :class:`~node.ingest.Ingest` on the writer thread;
* a reader store (a second connection) for the HTTP handlers, which only ever see committed,
  durable data;
* the *ticker*: every ``checkpoint_interval_s`` it seals the issues whose window closed and
  signs a checkpoint if the log grew (so growth waits at most one interval for a checkpoint);
* graceful stop: finish the queued writes, sign a final checkpoint, save the replay snapshot,
  release the lock.

Offline admin commands use :meth:`Node.open` and the writer directly, without :meth:`start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crypto import LiquideError, SecretKey

from ._datadir import load_key, load_successor_keys
from .config import NodeConfig, load_config
from .ingest import Ingest, VerifyPool, Writer
from .store import Store

__all__ = ["Node"]

log = logging.getLogger("liquide.node")


class Node:
    """One city node over one data directory. Create with :meth:`open`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        config: NodeConfig,
        key: SecretKey,
        store: Store,
        writer: Writer,
        clock: Callable[[], float],
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.key = key
        self.store = store
        self.writer = writer
        self.clock = clock
        self.origin = config.origin
        self.reader = store.reader()
        self.ingest: Ingest | None = None
        self.ready = False
        self._ticker: asyncio.Task[None] | None = None
        self._warming: asyncio.Future[None] | None = None
        self.started_at = time.time()
        self.extra: dict[str, Any] = {}
        """A place for later layers (federation) to hang their state on the node."""

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        config: NodeConfig | None = None,
    ) -> Node:
        """Open a data directory as its single writer and check its log.

        Raises :class:`~node.errors.ConfigError` (no node there, bad config or key),
        :class:`~node.errors.LockedError` (another process writes there) or
        :class:`~node.errors.IntegrityError` (the stored log does not extend a checkpoint
        signed before).
        """
        data_dir = Path(data_dir)
        config = config or load_config(data_dir)
        key = load_key(data_dir)
        successors = load_successor_keys(data_dir)  # handovers: the writer picks the one in effect
        store = Store.open(data_dir, writer=True)
        try:
            pool = VerifyPool(config.verify_workers) if config.verify_workers > 1 else None
            writer = Writer(store, key, config, clock, pool=pool, keys=successors)
        except BaseException:
            store.close()
            raise
        return cls(data_dir, config=config, key=key, store=store, writer=writer, clock=clock)

    @property
    def vkey(self) -> str:
        """The city's C2SP verifier key (its name is the origin)."""
        return self.key.public_key.to_vkey(self.origin)

    # Lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer thread and the ticker on the running loop."""
        if self.ingest is not None:
            return
        self.ingest = Ingest(self.writer)
        self.ingest.start()
        pool = self.writer.pool
        if pool is not None:
            # Start the verify workers off the loop; the first large batch would wait otherwise.
            self._warming = asyncio.get_running_loop().run_in_executor(None, pool.warm)
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(), name="ticker")
        self.ready = True
        log.info("node %s started: log size %d", self.origin, self.writer.size)

    async def stop(self) -> None:
        """Finish queued writes, sign a final checkpoint, save the snapshot, close."""
        self.ready = False
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self.ingest is not None:
            try:
                await self.ingest.call(self._final)
            finally:
                await self.ingest.stop()
                self.ingest = None
        self.close()

    def _final(self) -> None:
        cp = self.writer.sign_checkpoint()
        self.writer.save_snapshot()
        if cp is not None:
            log.info("final checkpoint signed at size %d", cp.size)

    def close(self) -> None:
        """Close the stores and release the lock (synchronous; after :meth:`stop` or offline)."""
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
        if self.writer.pool is not None:
            self.writer.pool.close()
        self.reader.close()
        self.store.close()

    def tick(self) -> None:
        """Seal issues whose window closed and sign a checkpoint if the log grew (writer thread)."""
        self.writer.seal_due()
        self.writer.sign_checkpoint()

    async def _tick_loop(self) -> None:
        assert self.ingest is not None
        interval = self.config.checkpoint_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.ingest.call(self.tick)
            except LiquideError as exc:
                # An IntegrityError here means the node refuses to sign: say so loudly, and keep
                # serving what is already signed.
                log.error("checkpoint tick failed: %s", exc.message)  # noqa: TRY400 (expected)
            except Exception:
                log.exception("checkpoint tick failed")
