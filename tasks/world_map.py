"""World maps as inline SVG: Natural Earth 1:110m country shapes (world-atlas TopoJSON, vendored in tasks/geo/ with
its licence and tasks/geo/vendor.py that re-derives it) in the Equal Earth projection, one <path> per shape.

Pure functions: decode the TopoJSON once, project, and draw a map whose shapes each carry a fill, a hover <title>
and optionally a link. Shapes are keyed by their `id`, the ISO 3166-1 numeric code, which is the UN M49 code of a
state. Drawn here rather than by vl-convert: the report draws a map per catalog treaty, and Vega took about 1.7 s
per map where this takes milliseconds. Upstream: none (tasks/geo/countries-110m.json). Tables fed: none.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TOPOJSON = Path(__file__).resolve().parent / "geo" / "countries-110m.json"
ANTARCTICA = "010"
WIDTH = 960
# Equal Earth (Šavrič, Patterson, Jenny 2018) coefficients; the projected world spans x ±2.7066, y ±1.3173.
A1, A2, A3, A4, M = 1.340264, -0.081106, 0.000893, 0.003796, math.sqrt(3) / 2
X_MAX, Y_MAX = 2.70663, 1.31733


@dataclass(frozen=True)
class Shape:
    id: str  # ISO 3166-1 numeric (= M49 for states); "" for shapes without one (N. Cyprus, Somaliland, Kosovo)
    name: str  # Natural Earth's short name
    path: str  # SVG path data in the map's pixel space


@dataclass(frozen=True)
class Area:
    """How one shape is drawn: fill colour, hover text, and a link (relative URL) or none."""

    fill: str
    title: str
    href: str | None = None


def equal_earth(lon: float, lat: float) -> tuple[float, float]:
    """Longitude, latitude in degrees -> Equal Earth x, y (unit sphere, y up)."""
    lam, phi = math.radians(lon), math.radians(lat)
    theta = math.asin(M * math.sin(phi))
    t2 = theta * theta
    t6 = t2 * t2 * t2
    x = lam * math.cos(theta) / (M * (A1 + 3 * A2 * t2 + t6 * (7 * A3 + 9 * A4 * t2)))
    return x, theta * (A1 + A2 * t2 + t6 * (A3 + A4 * t2))


def height() -> int:
    return round(WIDTH * Y_MAX / X_MAX)


def decode_arcs(topology: dict) -> list[list[tuple[float, float]]]:
    """Quantized, delta-encoded TopoJSON arcs -> arcs of (longitude, latitude)."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[tuple[float, float]]:
    """One closed ring from arc indexes (a negative index ~i is arc i reversed); shared end points once."""
    points: list[tuple[float, float]] = []
    for i in indexes:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def unwrap(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A ring crossing the antimeridian (Russia, Fiji) made continuous: longitudes may leave [-180, 180]."""
    out = points[:1]
    for lon, lat in points[1:]:
        previous = out[-1][0]
        lon += 360 * round((previous - lon) / 360)
        out.append((lon, lat))
    return out


def path(rings: list[list[tuple[float, float]]]) -> str:
    """SVG path data of rings, projected to the map's pixel space (y down). A ring that runs past the antimeridian
    is drawn again shifted by 360 degrees, so both sides show; the SVG's viewport clips what lies outside."""
    scale = WIDTH / (2 * X_MAX)
    parts = []
    for points in map(unwrap, rings):
        lons = [lon for lon, _ in points]
        shifts = [0] + ([-360] if max(lons) > 180 else []) + ([360] if min(lons) < -180 else [])
        for shift in shifts:
            xy = [equal_earth(lon + shift, lat) for lon, lat in points]
            parts.append("M" + "L".join(f"{(x + X_MAX) * scale:.1f},{(Y_MAX - y) * scale:.1f}" for x, y in xy)
                         + "Z")
    return "".join(parts)


@cache
def shapes() -> tuple[Shape, ...]:
    """Every country shape of the vendored TopoJSON but Antarctica, projected."""
    topology = json.loads(TOPOJSON.read_text())
    arcs = decode_arcs(topology)
    out = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        polygons = {"Polygon": [geometry.get("arcs", [])], "MultiPolygon": geometry.get("arcs", [])}.get(
            geometry["type"], [])
        rings = [ring(arcs, r) for polygon in polygons for r in polygon]
        if geometry.get("id") != ANTARCTICA and rings:
            out.append(Shape(geometry.get("id", ""), geometry["properties"]["name"], path(rings)))
    return tuple(out)


def draw(areas: dict[str, Area], other: Area, label: str) -> str:
    """An SVG map: each shape drawn as `areas[shape id]`, shapes not in `areas` as `other` (titled by their own
    name); `label` is the map's accessible name."""
    out = []
    for shape in shapes():
        area = areas.get(shape.id) or Area(other.fill, f"{shape.name}: {other.title}")
        title = html.escape(area.title)
        item = (f'<path class="{"area" if shape.id in areas else "other"}" d="{shape.path}" fill="{area.fill}">'
                f"<title>{title}</title></path>")
        out.append(f'<a href="{html.escape(area.href)}">{item}</a>' if area.href else item)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height()}" width="{WIDTH}" '
            f'height="{height()}" role="img" aria-label="{html.escape(label)}"><g stroke="#fff" stroke-width="0.4" '
            f'fill-rule="evenodd">{"".join(out)}</g></svg>')
