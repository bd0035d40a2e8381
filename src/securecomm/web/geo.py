"""County and state shapes as SVG paths, from the vendored us-atlas TopoJSON.

`vendor/counties-albers-10m.json` (npm `us-atlas`, Census cartographic boundaries at 1:10m,
already projected to Albers USA on a 975 × 610 canvas; see vendor/VENDORED.md) is decoded once
in Python: the delta-encoded, quantized arcs become absolute points, each geometry's rings an SVG
path. Nothing is drawn in the browser but the SVG the server sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

ATLAS = "counties-albers-10m.json"
CANVAS = (975, 610)


@dataclass(frozen=True)
class Shape:
    id: str  # FIPS: 5 digits for a county, 2 for a state
    name: str
    path: str  # SVG path data
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1


def _decode_arcs(topology: dict[str, Any]) -> list[list[tuple[float, float]]]:
    (scale_x, scale_y), (shift_x, shift_y) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((round(x * scale_x + shift_x, 1), round(y * scale_y + shift_y, 1)))
        arcs.append(points)
    return arcs


def _ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        # Consecutive arcs share their end point; keep it once.
        points.extend(arc[1:] if points else arc)
    return points


def _shape(geometry: dict[str, Any], arcs: list[list[tuple[float, float]]]) -> Shape:
    polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
    parts, xs, ys = [], [], []
    for polygon in polygons:
        for ring in polygon:
            points = _ring(arcs, ring)
            deduplicated = [point for i, point in enumerate(points) if i == 0 or point != points[i - 1]]
            parts.append("M" + "L".join(f"{x:g},{y:g}" for x, y in deduplicated) + "Z")
            xs.extend(x for x, _ in deduplicated)
            ys.extend(y for _, y in deduplicated)
    return Shape(geometry["id"], geometry["properties"]["name"], "".join(parts), (min(xs), min(ys), max(xs), max(ys)))


@cache
def _shapes() -> tuple[dict[str, Shape], dict[str, Shape]]:
    topology = json.loads((resources.files("securecomm.web") / "vendor" / ATLAS).read_bytes())
    arcs = _decode_arcs(topology)
    objects = topology["objects"]
    counties = {g["id"]: _shape(g, arcs) for g in objects["counties"]["geometries"] if "arcs" in g}
    states = {g["id"]: _shape(g, arcs) for g in objects["states"]["geometries"] if "arcs" in g}
    return counties, states


def county_shapes() -> dict[str, Shape]:
    """Every county's shape, by five-digit FIPS."""
    return _shapes()[0]


def state_shapes() -> dict[str, Shape]:
    """Every state's (and DC's) shape, by two-digit state FIPS."""
    return _shapes()[1]


def view_box(shapes: list[Shape], margin: float = 4.0) -> str:
    """The SVG viewBox that frames the shapes."""
    x0 = min(shape.bbox[0] for shape in shapes) - margin
    y0 = min(shape.bbox[1] for shape in shapes) - margin
    x1 = max(shape.bbox[2] for shape in shapes) + margin
    y1 = max(shape.bbox[3] for shape in shapes) + margin
    return f"{x0:g} {y0:g} {x1 - x0:g} {y1 - y0:g}"
