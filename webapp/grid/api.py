"""``/api/v1/locate``: which grid, village and township a point is in."""

from __future__ import annotations

import math

from flask import Blueprint, jsonify, request

from webapp.db import get_session
from webapp.errors import AppError
from webapp.grid import queries

bp = Blueprint("grid_api", __name__, url_prefix="/api/v1")


def parse_lon_lat(lon_text: str | None, lat_text: str | None) -> tuple[float, float]:
    """Parse and range-check a WGS84 longitude and latitude given as text."""
    try:
        lon = float(lon_text)  # type: ignore[arg-type]
        lat = float(lat_text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AppError(
            "invalid_coordinates",
            "请提供有效的经纬度（lon、lat，WGS84 十进制度）",
            400,
            "lon and lat must be decimal degrees (WGS84)",
        ) from None
    if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lon) > 180 or abs(lat) > 90:
        raise AppError(
            "invalid_coordinates",
            "经纬度超出范围：经度应在 -180 至 180 之间，纬度应在 -90 至 90 之间",
            400,
            "longitude must be within [-180, 180] and latitude within [-90, 90]",
        )
    return lon, lat


@bp.get("/locate")
def locate():
    lon, lat = parse_lon_lat(request.args.get("lon"), request.args.get("lat"))
    found = queries.locate(get_session(), lon, lat)
    if found is None:
        raise AppError(
            "outside_county",
            "该位置不在本县任何网格内",
            404,
            "the point is outside every grid of the county",
        )
    return jsonify({"lon": lon, "lat": lat, **found.to_dict()})
