"""The node's public web pages: server-rendered, read-only HTML with a ``.json`` twin each.

Mounted on the node's aiohttp app by :func:`node.server.create_app` through :func:`add_routes`.
The pages show what the ``/v1`` JSON API serves (they read it through the same helpers), in
French or English, with inline SVG charts and no JavaScript. See :mod:`node.web._routes` for
the routes and the caching of sealed issues' pages.
"""

from ._routes import WEB_KEY, WebState, add_routes

__all__ = ["WEB_KEY", "WebState", "add_routes"]
