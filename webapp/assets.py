"""Front-end libraries served by the app itself, from ``node_modules/`` (never a CDN).

``make setup`` installs them from the npm registry through ``package-lock.json``;
only the packages that ``package.json`` depends on are served, under ``/vendor/``.
The app's own icon is answered at ``/favicon.ico`` too, where browsers look for it
on documents that do not name one (a 404 there is an error in every browser console).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, current_app, send_from_directory

from webapp.auth.identity import anonymous
from webapp.errors import NotFound

ROOT = Path(__file__).resolve().parent.parent
bp = Blueprint("vendor", __name__)


def vendor_dir() -> Path:
    return Path(current_app.config.get("VENDOR_DIR") or ROOT / "node_modules")


@lru_cache(maxsize=1)
def served_packages() -> frozenset[str]:
    """The npm packages the project depends on directly (and so serves)."""
    manifest = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    return frozenset(manifest.get("dependencies", {}))


def vendor_path(package: str, file: str) -> Path:
    """Return the file of an npm package on disk, failing loudly if it is not there."""
    if package not in served_packages():
        raise LookupError(f"npm package {package!r} is not a dependency in package.json")
    path = vendor_dir() / package / file
    if not path.is_file():
        raise LookupError(f"{path} is missing: run `make setup` (npm ci)")
    return path


@bp.get("/vendor/<path:subpath>")
@anonymous
def asset(subpath: str):
    parts = subpath.split("/")
    package = "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]
    rest = subpath[len(package) + 1 :]
    if package not in served_packages() or not rest:
        raise NotFound("文件")
    response = send_from_directory(vendor_dir() / package, rest, max_age=7 * 24 * 3600)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/favicon.ico")
@anonymous
def favicon():
    return send_from_directory(
        current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=7 * 24 * 3600
    )
