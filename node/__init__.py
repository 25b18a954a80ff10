"""Liquide's I/O layer: the SQLite store, the aiohttp server and pages, sync and witness loops,
the HTTP client, config, and the click CLI for the node, registrar, wallet and observer.
"""

__all__: list[str] = []
