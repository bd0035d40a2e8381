"""The web application (docs/web.md): the desk's signed-in pages, the lab, where anyone compares
detainer policies for a place, and the policy library's pages with "try a case". `create_app` builds
the lab and library; `served.serve_app` mounts them and the desk's pages into the desk's own app,
which `securecomm serve` runs."""

from securecomm.web.app import create_app

__all__ = ["create_app"]
