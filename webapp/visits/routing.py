"""Short walking routes: nearest neighbour, then 2-opt and Or-opt on real distances (pure).

A route starts at a fixed point (the village committee, say) and visits every stop
once; it need not come back. Distances are either geodesic on the WGS84 ellipsoid
(:func:`plan_route`): the optimiser works in a transverse Mercator projection centred
within 0.05° of the stops, where straight-line distance differs from the geodesic by
less than 1e-5 relative for anything a person walks in a day (tested against
``pyproj.Geod``), and the lengths reported are measured with ``pyproj.Geod`` itself;
or read from a distance matrix (:func:`plan_route_on`), such as walking distances
along roads (``webapp.roads.queries.distance_matrix``). The same search runs on both.

The optimiser is built for large routes (a thousand stops in well under a second):

- nearest neighbour from the start, vectorised with numpy (O(n²) in C);
- local search with neighbour lists (each stop's ``k`` nearest) and don't-look bits:
  only moves that create an edge to a near neighbour are tried, and only around stops
  whose edges changed; 2-opt reverses a stretch of the path, Or-opt moves a run of up
  to three stops (either way round) next to a near neighbour.

Every applied move shortens the path, so the result is never longer than the
nearest-neighbour path it started from; a final check on geodesic lengths keeps the
nearest-neighbour order should rounding ever say otherwise.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pyproj import Geod, Transformer

GEOD = Geod(ellps="WGS84")
NEIGHBOURS = 10
EPS_M = 1e-6


@dataclass(frozen=True)
class Route:
    """Stops in walking order (indices into the input), with geodesic legs in metres."""

    order: tuple[int, ...]
    legs_m: tuple[float, ...]  # legs_m[i]: from the previous stop (or the start) to order[i]

    @property
    def length_m(self) -> float:
        return float(sum(self.legs_m))


@lru_cache(maxsize=64)
def _projection(lon_0: float) -> Transformer:
    return Transformer.from_crs(
        "EPSG:4326",
        f"+proj=tmerc +lat_0=0 +lon_0={lon_0:.1f} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m "
        f"+no_defs",
        always_xy=True,
    )


def project(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project WGS84 points to metres in a transverse Mercator centred on their longitude."""
    lon_0 = round(float(np.mean(lon)), 1)
    x, y = _projection(lon_0).transform(lon, lat)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def geodesic_legs(
    start: tuple[float, float], stops: Sequence[tuple[float, float]], order: Sequence[int]
) -> tuple[float, ...]:
    """Geodesic length of each leg of the path start → stops[order[0]] → … (metres)."""
    if not order:
        return ()
    pts = [start] + [stops[i] for i in order]
    lon = np.array([p[0] for p in pts], dtype=float)
    lat = np.array([p[1] for p in pts], dtype=float)
    _, _, d = GEOD.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    return tuple(float(v) for v in np.atleast_1d(d))


def path_length_m(
    start: tuple[float, float], stops: Sequence[tuple[float, float]], order: Sequence[int]
) -> float:
    """Geodesic length of the path start → stops in ``order`` (metres)."""
    return float(sum(geodesic_legs(start, stops, order)))


def _coords(start, stops) -> tuple[np.ndarray, np.ndarray]:
    lon = np.array([start[0]] + [s[0] for s in stops], dtype=float)
    lat = np.array([start[1]] + [s[1] for s in stops], dtype=float)
    return project(lon, lat)


def _nearest_neighbour(x: np.ndarray, y: np.ndarray) -> list[int]:
    """Node 0 is the start; return the path over all nodes, always to the nearest unvisited."""
    n = len(x)
    visited = np.zeros(n, dtype=bool)
    visited[0] = True
    path = [0]
    cur = 0
    for _ in range(n - 1):
        d = (x - x[cur]) ** 2 + (y - y[cur]) ** 2
        d[visited] = np.inf
        cur = int(np.argmin(d))  # ties: the lowest index, so the result is deterministic
        visited[cur] = True
        path.append(cur)
    return path


def nearest_neighbour(
    start: tuple[float, float], stops: Sequence[tuple[float, float]]
) -> tuple[int, ...]:
    """The nearest-neighbour order of ``stops`` from ``start`` (indices into ``stops``)."""
    if not stops:
        return ()
    x, y = _coords(start, stops)
    return tuple(i - 1 for i in _nearest_neighbour(x, y)[1:])


def _neighbour_lists(x: np.ndarray, y: np.ndarray, k: int) -> list[list[int]]:
    """Each node's ``k`` nearest other nodes, nearest first (computed in row blocks)."""
    n = len(x)
    k = min(k, n - 1)
    out: list[list[int]] = []
    block = max(1, 4_000_000 // max(n, 1))
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        d = (x[lo:hi, None] - x[None, :]) ** 2 + (y[lo:hi, None] - y[None, :]) ** 2
        d[np.arange(hi - lo), np.arange(lo, hi)] = np.inf
        part = (
            np.argpartition(d, k - 1, axis=1)[:, :k] if k < n - 1 else np.argsort(d, axis=1)[:, :k]
        )
        rows = np.take_along_axis(d, part, axis=1)
        order = np.argsort(rows, axis=1, kind="stable")
        out.extend(np.take_along_axis(part, order, axis=1).tolist())
    return out


def _plane_distance(x: np.ndarray, y: np.ndarray) -> Callable[[int, int], float]:
    X, Y, hyp = x.tolist(), y.tolist(), math.hypot

    def d(u: int, v: int) -> float:
        return hyp(X[u] - X[v], Y[u] - Y[v])

    return d


def _matrix_distance(matrix: np.ndarray) -> Callable[[int, int], float]:
    rows = matrix.tolist()

    def d(u: int, v: int) -> float:
        return rows[u][v]

    return d


class _Path:
    """A path over nodes 0..n-1 that starts at node 0, with positions for O(1) lookup.

    ``d(u, v)`` is the distance between two nodes; it must be symmetric (2-opt walks
    stretches of the path backwards).
    """

    def __init__(self, order: list[int], d: Callable[[int, int], float]) -> None:
        self.p = order
        self.pos = [0] * len(order)
        for i, v in enumerate(order):
            self.pos[v] = i
        self.d = d
        self.last = len(order) - 1

    def length(self) -> float:
        p = self.p
        return sum(self.d(p[i], p[i + 1]) for i in range(len(p) - 1))

    def reverse(self, i: int, j: int) -> None:
        """Reverse the stretch p[i..j] in place (1 <= i <= j)."""
        p, pos = self.p, self.pos
        p[i : j + 1] = p[i : j + 1][::-1]
        for k in range(i, j + 1):
            pos[p[k]] = k

    def relocate(self, s: int, length: int, after: int, flip: bool) -> None:
        """Move the run p[s..s+length-1] to just after the node ``after`` (flipped if asked)."""
        p = self.p
        run = p[s : s + length]
        if flip:
            run.reverse()
        rest = p[:s] + p[s + length :]
        ka = self.pos[after]
        k = ka if ka < s else ka - length
        self.p = rest[: k + 1] + run + rest[k + 1 :]
        for i in range(min(s, k + 1), max(s + length, k + 1 + length)):
            self.pos[self.p[i]] = i


def _try_two_opt(path: _Path, a: int, neighbours: list[int]) -> list[int] | None:
    """Try the 2-opt moves that create an edge from ``a`` to one of its neighbours."""
    p, pos, last, d = path.p, path.pos, path.last, path.d
    for c in neighbours:
        i, j = pos[a], pos[c]
        if i > j:
            i, j = j, i
        if j - i < 2:
            continue
        u, v = p[i], p[j]
        duv = d(u, v)
        # Move 1: drop (p[i],p[i+1]) and (p[j],p[j+1]); reverse p[i+1..j].
        gain = d(u, p[i + 1]) - duv
        if j < last:
            gain += d(v, p[j + 1]) - d(p[i + 1], p[j + 1])
        if gain > EPS_M:
            touched = [u, p[i + 1], v] + ([p[j + 1]] if j < last else [])
            path.reverse(i + 1, j)
            return touched
        # Move 2: drop (p[i-1],p[i]) and (p[j-1],p[j]); reverse p[i..j-1] (the start stays).
        if i >= 1:
            gain = d(p[i - 1], u) + d(p[j - 1], v) - d(p[i - 1], p[j - 1]) - duv
            if gain > EPS_M:
                touched = [p[i - 1], u, p[j - 1], v]
                path.reverse(i, j - 1)
                return touched
    return None


def _try_or_opt(path: _Path, a: int, nbrs: list[list[int]], max_run: int = 3) -> list[int] | None:
    """Try moving a run of up to ``max_run`` stops that starts or ends at ``a`` next to a neighbour.

    The run keeps one end next to a near neighbour of that end (the neighbour list is
    sorted, and the search along it stops once the new edge alone is longer than what
    removing the run saves).
    """
    p, pos, last, d = path.p, path.pos, path.last, path.d
    ia = pos[a]
    if ia == 0:
        return None
    for length in range(1, max_run + 1):
        for s in (ia,) if length == 1 else (ia, ia - length + 1):
            e = s + length - 1
            if s < 1 or e > last:
                continue
            first, end = p[s], p[e]
            prev = p[s - 1]
            nxt = p[e + 1] if e < last else None
            removed = d(prev, first) + (d(end, nxt) - d(prev, nxt) if nxt is not None else 0.0)
            if removed <= EPS_M:
                continue
            for anchor, other in ((first, end), (end, first)):
                for c in nbrs[anchor]:
                    dac = d(anchor, c)
                    if dac >= removed:
                        break
                    k = pos[c]
                    if s <= k <= e:
                        continue
                    # anchor right after c (run head = anchor),
                    # or right before c (run tail = anchor)
                    for left, head, tail in ((k, anchor, other), (k - 1, other, anchor)):
                        if left < 0 or s - 1 <= left <= e:
                            continue
                        lnode = p[left]
                        rnode = p[left + 1] if left < last else None
                        if rnode is None:
                            added = d(lnode, head)
                        else:
                            added = d(lnode, head) + d(tail, rnode) - d(lnode, rnode)
                        if removed - added > EPS_M:
                            touched = [prev, first, end, lnode] + [
                                v for v in (nxt, rnode) if v is not None
                            ]
                            path.relocate(s, length, lnode, flip=head != first)
                            return touched
    return None


def _improve(path: _Path, nbrs: list[list[int]], max_moves: int) -> None:
    queue = deque(path.p[1:] + [path.p[0]])
    queued = set(queue)
    moves = 0
    while queue and moves < max_moves:
        a = queue.popleft()
        queued.discard(a)
        touched = _try_two_opt(path, a, nbrs[a]) or _try_or_opt(path, a, nbrs)
        if touched is None:
            continue
        moves += 1
        for v in touched + [a]:
            if v not in queued:
                queue.append(v)
                queued.add(v)


def plan_route(
    start: tuple[float, float],
    stops: Sequence[tuple[float, float]],
    neighbours: int = NEIGHBOURS,
) -> Route:
    """Order ``stops`` (lon, lat) into a short path from ``start``; return order and legs."""
    n = len(stops)
    if n == 0:
        return Route((), ())
    x, y = _coords(start, stops)
    nn = _nearest_neighbour(x, y)
    order = nn
    if n >= 3:
        path = _Path(list(nn), _plane_distance(x, y))
        _improve(path, _neighbour_lists(x, y, neighbours), max_moves=50 * n)
        order = path.p
    best = tuple(i - 1 for i in order[1:])
    legs = geodesic_legs(start, stops, best)
    if best != tuple(i - 1 for i in nn[1:]):
        nn_legs = geodesic_legs(start, stops, [i - 1 for i in nn[1:]])
        if sum(nn_legs) < sum(legs):  # pragma: no cover - guards against rounding only
            return Route(tuple(i - 1 for i in nn[1:]), nn_legs)
    return Route(best, legs)


def continue_route(
    start: tuple[float, float],
    fixed: Sequence[tuple[float, float]],
    stops: Sequence[tuple[float, float]],
) -> Route:
    """Order ``stops`` after the already-walked ``fixed`` ones (kept first, as they are).

    The route of the remaining stops starts where the last fixed stop is.
    """
    origin = fixed[-1] if fixed else start
    return plan_route(origin, stops)


# -- on a distance matrix ---------------------------------------------------------------


def _check_matrix(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError("the distance matrix must be square")
    if not np.allclose(m, m.T, rtol=1e-9, atol=1e-6):
        raise ValueError("the distance matrix must be symmetric")
    return m


def _nearest_neighbour_on(m: np.ndarray) -> list[int]:
    """Node 0 is the start; the path over all nodes, always to the nearest unvisited."""
    n = len(m)
    visited = np.zeros(n, dtype=bool)
    visited[0] = True
    path = [0]
    cur = 0
    for _ in range(n - 1):
        d = m[cur].copy()
        d[visited] = np.inf
        cur = int(np.argmin(d))  # ties: the lowest index
        visited[cur] = True
        path.append(cur)
    return path


def nearest_neighbour_on(matrix: np.ndarray) -> tuple[int, ...]:
    """The nearest-neighbour order of stops 1..n-1 from node 0 (indices into the stops)."""
    m = _check_matrix(matrix)
    return tuple(i - 1 for i in _nearest_neighbour_on(m)[1:])


def matrix_legs(matrix: np.ndarray, order: Sequence[int]) -> tuple[float, ...]:
    """The legs of the path node 0 → stop order[0] → … read from the matrix (stops = 1..n-1)."""
    nodes = [0] + [i + 1 for i in order]
    return tuple(float(matrix[a][b]) for a, b in zip(nodes, nodes[1:], strict=False))


def plan_route_on(matrix: np.ndarray, neighbours: int = NEIGHBOURS) -> Route:
    """Order the stops of a distance matrix into a short path from its node 0.

    ``matrix[i][j]`` is the distance from node i to node j: node 0 is the start,
    node i + 1 is stop i; it must be symmetric. Returns the order of the stops and
    legs read from the matrix; never longer than the nearest-neighbour path.
    """
    m = _check_matrix(matrix)
    n = len(m) - 1
    if n <= 0:
        return Route((), ())
    nn = _nearest_neighbour_on(m)
    order = nn
    if n >= 3:
        k = min(neighbours, n)
        masked = m + np.diag(np.full(n + 1, np.inf))
        nbrs = np.argsort(masked, axis=1, kind="stable")[:, :k].tolist()
        path = _Path(list(nn), _matrix_distance(m))
        _improve(path, nbrs, max_moves=50 * n)
        order = path.p
    best = tuple(i - 1 for i in order[1:])
    nn_order = tuple(i - 1 for i in nn[1:])
    legs, nn_legs = matrix_legs(m, best), matrix_legs(m, nn_order)
    if sum(nn_legs) < sum(legs):  # pragma: no cover - guards against rounding only
        return Route(nn_order, nn_legs)
    return Route(best, legs)
