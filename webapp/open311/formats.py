"""GeoReport v2 documents in JSON or XML, as the specification shows them.

The same plain data (lists of dicts) is rendered either way: JSON as it is, XML with
the root and item element names the specification uses, lists of nested items
(``attributes``, ``values``, ``endpoints``, ``formats``) as repeated elements of the
singular name, booleans as ``true``/``false`` and missing values as empty elements.
ElementTree escapes every text.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from flask import Response

SINGULAR = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}
MIMETYPES = {"json": "application/json", "xml": "text/xml"}


def _fill(parent: ET.Element, value) -> None:
    if isinstance(value, dict):
        for key, v in value.items():
            _fill(ET.SubElement(parent, key), v)
    elif isinstance(value, list):
        child = SINGULAR.get(parent.tag, "item")
        for v in value:
            _fill(ET.SubElement(parent, child), v)
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    elif value is None:
        parent.text = ""
    else:
        parent.text = str(value)


def to_xml(root: str, item: str | None, data) -> bytes:
    """Render ``data`` under ``<root>``: a list as repeated ``<item>``, a dict as children."""
    top = ET.Element(root)
    if isinstance(data, list):
        for entry in data:
            _fill(ET.SubElement(top, item or "item"), entry)
    else:
        _fill(top, data)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(
        top, encoding="utf-8", xml_declaration=False
    )


def render(fmt: str, data, root: str, item: str | None = None, status: int = 200) -> Response:
    """Answer ``data`` in ``fmt`` ("json" or "xml") with the spec's element names."""
    if fmt == "xml":
        body = to_xml(root, item, data)
    else:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return Response(
        body,
        status=status,
        mimetype=MIMETYPES[fmt],
        content_type=f"{MIMETYPES[fmt]}; charset=utf-8",
    )


def render_errors(fmt: str, status: int, errors: list[dict]) -> Response:
    return render(fmt, errors, "errors", "error", status)
