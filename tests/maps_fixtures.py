"""Hand-made data for the map builders, and hostile text to feed them."""

from __future__ import annotations

import re

import numpy as np
from shapely.geometry import box, mapping

from webapp.grid.models import AreaLevel
from webapp.maps.builders import MapFrame
from webapp.maps.figures import AreaFigures
from webapp.maps.queries import AreaInfo, CasePoint, HeatLattice

# Text that would run if it reached HTML or a JS template string unescaped.
HOSTILE = [
    '<img src=x onerror="window.__pwned=1;alert(1)">',
    "</script><script>window.__pwned=1</script>",
    "`${window.__pwned=1}`",
    "'\"><svg onload=alert(1)>",
    "\\u003cscript\\u003e ${alert(1)} {{7*7}}",
]
PWN = HOSTILE[0]

COUNTY = AreaInfo("990200", "测试县", AreaLevel.COUNTY, 20000, (114.0, 35.0, 114.2, 35.1))
CHILDREN = [
    ("990200001", "东镇", box(114.0, 35.0, 114.1, 35.1), 12000),
    ("990200002", PWN, box(114.1, 35.0, 114.2, 35.1), 8000),
]


def features(children=CHILDREN) -> dict:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "code": c,
                    "name": n,
                    "population": p,
                    "label": [g.representative_point().x, g.representative_point().y],
                },
                "geometry": mapping(g),
            }
            for c, n, g, p in children
        ],
    }


def frame(**kw) -> MapFrame:
    base = dict(
        area=COUNTY,
        outline=mapping(box(*COUNTY.bounds)),
        features=features(),
        figures={
            "990200001": AreaFigures(
                {
                    "cases": 40,
                    "people": 90,
                    "per_1000": 40 / 12,
                    "resolution_rate": 0.75,
                    "overdue": 3,
                    "satisfaction_rate": 0.95,
                    "repeats": 4,
                },
                12000,
            ),
            "990200002": AreaFigures(
                {
                    "cases": 10,
                    "people": 12,
                    "per_1000": 1.25,
                    "resolution_rate": 0.9,
                    "overdue": 0,
                    "satisfaction_rate": None,
                    "repeats": 1,
                },
                8000,
            ),
        },
        drill={
            "990200001": "/maps/?map=heat&area=990200001",
            "990200002": "/maps/?map=heat&area=990200002",
        },
        title=f"{PWN} 标题",
        notes=("时间：2025-01-01 至 2025-12-31", f"类别：{HOSTILE[2]}"),
    )
    base.update(kw)
    return MapFrame(**base)


def lattice() -> HeatLattice:
    weights = np.zeros((10, 20))
    weights[2, 3] = 5
    weights[7, 15] = 40
    weights[7, 16] = 2
    return HeatLattice(114.0, 35.0, 0.01, 0.01, 1000.0, weights, 20, 47, "people")


def points() -> list[CasePoint]:
    return [
        CasePoint(101, "990200-2025-0000101", PWN, "征地拆迁", "in_progress", 114.05, 35.05, False),
        CasePoint(
            102, "990200-2025-0000102", HOSTILE[1], HOSTILE[3], "resolved", 114.15, 35.05, True
        ),
    ]


_HOST = re.compile(r"https?://([A-Za-z0-9.{}-]+)")


def hosts_in(html: str) -> set[str]:
    return set(_HOST.findall(html))
