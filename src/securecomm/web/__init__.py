"""The web application: the lab, where anyone compares detainer policies for a place, and the policy
library's pages with "try a case" (docs/web.md). `create_app` builds it; `securecomm web` serves it."""

from securecomm.web.app import create_app

__all__ = ["create_app"]
