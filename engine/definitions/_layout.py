"""Left-to-right diagram layout for compiled maps, so they open in a modeler looking hand-drawn.

Each scope (the process, each expanded subprocess) is laid out on a grid: the column of a node is
its longest path from the start (back edges of loops left out), its row comes from a depth-first
walk that keeps the first way out of a node on the node's row and stacks the other branches
below, on the first row whose cells the branch's edge can cross without running through a shape.
Subprocesses are laid out first and then placed as one big shape. Boundary events sit on their
host's bottom edge; their targets go below the host. Edges are orthogonal: vertical segments run
in the gaps between columns, and loops run back along a lane under the scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

H_GAP = 60  # between columns
V_GAP = 60  # between rows; more than the 18 px a boundary event hangs below its host
PAD = 40  # inside an expanded subprocess
LANE = 14  # spacing of back-edge lanes
ORIGIN = (150, 80)
MIN_CONTAINER = (200, 140)

Point = tuple[int, int]


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def cx(self) -> int:
        return self.x + self.w // 2

    @property
    def cy(self) -> int:
        return self.y + self.h // 2

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def moved(self, dx: int, dy: int) -> Box:
        return Box(self.x + dx, self.y + dy, self.w, self.h)

    def overlaps(self, other: Box) -> bool:
        return (self.x < other.right and other.x < self.right
                and self.y < other.bottom and other.y < self.bottom)


@dataclass(frozen=True)
class LayoutNode:
    id: str
    scope: str  # id of the process or subprocess that contains it
    size: tuple[int, int]  # ignored for containers, which take the size of their content
    attached_to: str | None = None  # boundary events
    container: bool = False
    gateway: bool = False


@dataclass(frozen=True)
class LayoutEdge:
    id: str
    source: str
    target: str
    scope: str


@dataclass
class Layout:
    boxes: dict[str, Box] = field(default_factory=dict)
    waypoints: dict[str, list[Point]] = field(default_factory=dict)

    def moved(self, dx: int, dy: int) -> Layout:
        return Layout({k: b.moved(dx, dy) for k, b in self.boxes.items()},
                      {k: [(x + dx, y + dy) for x, y in w] for k, w in self.waypoints.items()})


def layout(nodes: Sequence[LayoutNode], edges: Sequence[LayoutEdge], root: str) -> Layout:
    """Boxes for every node and waypoints for every edge; `root` is the process id."""
    return _Scope(root, nodes, edges).run().moved(*ORIGIN)


class _Scope:
    def __init__(self, scope: str, nodes: Sequence[LayoutNode], edges: Sequence[LayoutEdge]):
        self.all_nodes, self.all_edges = nodes, edges
        self.nodes = [n for n in nodes if n.scope == scope and n.attached_to is None]
        self.bounds = [n for n in nodes if n.scope == scope and n.attached_to is not None]
        self.edges = [e for e in edges if e.scope == scope]
        self.host = {n.id: n.attached_to for n in self.bounds}
        self.gateways = {n.id for n in self.nodes if n.gateway}
        self.layer: dict[str, int] = {}
        self.row: dict[str, int] = {}
        self.cells: dict[tuple[int, int], str] = {}  # (layer, row) -> node id or "" for an edge
        self.via: dict[str, str] = {}  # edge id -> the row its long horizontal runs on

    def run(self) -> Layout:
        out = Layout()
        sizes: dict[str, tuple[int, int]] = {}
        inner: dict[str, Layout] = {}
        for n in self.nodes:
            if n.container:
                sub = _Scope(n.id, self.all_nodes, self.all_edges).run()
                right = max((b.right for b in sub.boxes.values()), default=0)
                bottom = max((b.bottom for b in sub.boxes.values()), default=0)
                bottom = max([bottom, *(y for w in sub.waypoints.values() for _, y in w)])
                sizes[n.id] = (max(right + 2 * PAD, MIN_CONTAINER[0]),
                               max(bottom + 2 * PAD, MIN_CONTAINER[1]))
                inner[n.id] = sub
            else:
                sizes[n.id] = n.size
        self.place()
        self.coordinates(sizes, out)
        for cid, sub in inner.items():
            moved = sub.moved(out.boxes[cid].x + PAD, out.boxes[cid].y + PAD)
            out.boxes.update(moved.boxes)
            out.waypoints.update(moved.waypoints)
        self.route(out)
        return out

    def outgoing(self, node: str) -> list[tuple[str, str, bool]]:
        """(edge id, target, leaves from a boundary event): the node's own edges first."""
        own = [(e.id, e.target, False) for e in self.edges if e.source == node]
        hung = [(e.id, e.target, True) for e in self.edges
                if self.host.get(e.source) == node]
        return own + hung

    def place(self) -> None:
        ids = [n.id for n in self.nodes]
        has_in = {e.target for e in self.edges}
        roots = [i for i in ids if i not in has_in] or ids[:1]
        back: set[str] = set()  # edge ids that close a loop
        state: dict[str, int] = {}  # 1 on the DFS stack, 2 done
        order: list[str] = []
        for r in roots + ids:
            if r in state:
                continue
            stack = [(r, iter(self.outgoing(r)))]
            state[r] = 1
            while stack:
                node, it = stack[-1]
                step = next(it, None)
                if step is None:
                    stack.pop()
                    state[node] = 2
                    order.append(node)
                elif state.get(step[1]) == 1:
                    back.add(step[0])
                elif step[1] not in state:
                    state[step[1]] = 1
                    stack.append((step[1], iter(self.outgoing(step[1]))))
        self.back = back
        for node in reversed(order):  # topological order of the forward edges
            self.layer.setdefault(node, 0)
            for eid, target, _ in self.outgoing(node):
                if eid not in back:
                    self.layer[target] = max(self.layer.get(target, 0), self.layer[node] + 1)
        for r in roots + ids:
            if r not in self.row:
                self.put(r, self.free_row(self.layer[r], 0, []))
                self.walk(r)

    def free_row(self, layer: int, start: int, cells: list[tuple[int, int]]) -> int:
        row = start
        while (layer, row) in self.cells or any((c, row) in self.cells for c, _ in cells):
            row += 1
        return row

    def put(self, node: str, row: int) -> None:
        self.row[node] = row
        self.cells[(self.layer[node], row)] = node

    def walk(self, root: str) -> None:
        """Place what `root` leads to: depth first, boundary paths once the rest is placed."""
        stack = [(root, iter(self.outgoing(root)))]
        later: list[tuple[str, str, str]] = []
        while stack or later:
            if not stack:
                node, eid, target = later.pop(0)
                if target not in self.row:
                    self.place_child(node, eid, target, hung=True)
                    stack.append((target, iter(self.outgoing(target))))
                continue
            node, it = stack[-1]
            step = next(it, None)
            if step is None:
                stack.pop()
                continue
            eid, target, hung = step
            if eid in self.back:
                continue
            if hung:
                later.append((node, eid, target))
            elif target in self.row:  # a merge: the edge runs along the source's row
                self.via[eid] = "source"
                for c in range(self.layer[node] + 1, self.layer[target]):
                    self.cells.setdefault((c, self.row[node]), "")
            else:
                self.place_child(node, eid, target, hung=False)
                stack.append((target, iter(self.outgoing(target))))

    def place_child(self, node: str, eid: str, target: str, hung: bool) -> None:
        """Put `target` on the first row its edge from `node` reaches without crossing shapes."""
        # a boundary path drops below its host and turns right there: its row starts one lower
        # and must be free in the host's column as well
        first = self.layer[node] + (0 if hung else 1)
        passage = [(c, 0) for c in range(first, self.layer[target])]
        row = self.free_row(self.layer[target], self.row[node] + (1 if hung else 0), passage)
        if hung or node in self.gateways:  # the edge leaves downwards in the node's column
            for r in range(self.row[node] + 1, row + (0 if hung else 1)):
                self.cells.setdefault((self.layer[node], r), "")
        for c, _ in passage:
            self.cells[(c, row)] = ""
        self.via[eid] = "target"
        self.put(target, row)

    def coordinates(self, sizes: dict[str, tuple[int, int]], out: Layout) -> None:
        cols = max(self.layer.values(), default=0) + 1
        rows = max(self.row.values(), default=0) + 1
        colw, rowh = [36] * cols, [36] * rows
        for n in self.nodes:
            w, h = sizes[n.id]
            colw[self.layer[n.id]] = max(colw[self.layer[n.id]], w)
            rowh[self.row[n.id]] = max(rowh[self.row[n.id]], h)
        self.colx, self.rowy = [0] * cols, [0] * rows
        for c in range(1, cols):
            self.colx[c] = self.colx[c - 1] + colw[c - 1] + H_GAP
        for r in range(1, rows):
            self.rowy[r] = self.rowy[r - 1] + rowh[r - 1] + V_GAP
        self.colw = colw
        for n in self.nodes:
            w, h = sizes[n.id]
            c, r = self.layer[n.id], self.row[n.id]
            cx, cy = self.colx[c] + colw[c] // 2, self.rowy[r] + rowh[r] // 2
            out.boxes[n.id] = Box(cx - w // 2, cy - h // 2, w, h)
        count: dict[str, int] = {}
        for b in self.bounds:
            host_id = b.attached_to or ""
            host, k = out.boxes[host_id], count.get(host_id, 0)
            count[host_id] = k + 1
            cx = max(host.right - 20 - 44 * k, host.x + 18)
            out.boxes[b.id] = Box(cx - 18, host.bottom - 18, 36, 36)
        self.bottom = max((b.bottom for b in out.boxes.values()), default=0)

    def gap_after(self, node: str) -> int:
        c = self.layer[node]
        return self.colx[c] + self.colw[c] + H_GAP // 2

    def gap_before(self, node: str) -> int:
        return self.colx[self.layer[node]] - H_GAP // 2

    def clear(self, cells: list[tuple[int, int]]) -> bool:
        return not any(self.cells.get(cell) for cell in cells)

    def route(self, out: Layout) -> None:
        self.lanes = [0, 0]  # lanes used above and below the scope
        for e in self.edges:
            out.waypoints[e.id] = self.path(e, out)
        top = min([b.y for b in out.boxes.values()] +
                  [y for w in out.waypoints.values() for _, y in w], default=0)
        if top < 0:  # lanes above the first row: move everything down to make room
            moved = out.moved(0, -top)
            out.boxes, out.waypoints = moved.boxes, moved.waypoints

    def path(self, e: LayoutEdge, out: Layout) -> list[Point]:
        host = self.host.get(e.source)
        src, s, t = host or e.source, out.boxes[e.source], out.boxes[e.target]
        ls, lt = self.layer[src], self.layer[e.target]
        rs, rt = self.row[src], self.row[e.target]
        between = range(ls + 1, lt)
        down = range(min(rs, rt) + 1, max(rs, rt))
        if lt <= ls:  # a loop back, or a boundary path to an earlier column
            return self.around(src, e.target, s, t, bool(host), below=True)
        if host and rt > rs:
            return [(s.cx, s.bottom), (s.cx, t.cy), (t.x, t.cy)]
        if host:  # to a target on the host's row or above: under the host, then across
            y, x = s.bottom + 20, self.gap_before(e.target)
            return [(s.cx, s.bottom), (s.cx, y), (x, y), (x, t.cy), (t.x, t.cy)]
        if rs == rt:
            if self.clear([(c, rs) for c in between]):
                return [(s.right, s.cy), (t.x, t.cy)]
            return self.around(src, e.target, s, t, False, below=rs > 0)
        if src in self.gateways and self.clear(
                [(ls, r) for r in down] + [(ls, rt)] + [(c, rt) for c in between]):
            edge_y = s.bottom if rt > rs else s.y
            return [(s.cx, edge_y), (s.cx, t.cy), (t.x, t.cy)]
        if self.via.get(e.id) == "source" and e.target in self.gateways and self.clear(
                [(lt, r) for r in down] + [(lt, rs)] + [(c, rs) for c in between]):
            edge_y = t.bottom if rs > rt else t.y
            return [(s.right, s.cy), (t.cx, s.cy), (t.cx, edge_y)]
        options = [(self.gap_after(src), rt), (self.gap_before(e.target), rs)]
        if self.via.get(e.id) == "source":
            options.reverse()
        for x, row in options:  # the vertical in a gap, the horizontal along a clear row
            if self.clear([(c, row) for c in between]):
                return [(s.right, s.cy), (x, s.cy), (x, t.cy), (t.x, t.cy)]
        return self.around(src, e.target, s, t, False, below=True)

    def around(self, src: str, target: str, s: Box, t: Box, hung: bool, below: bool
               ) -> list[Point]:
        """Out of the source, along a lane above or below the scope, and into the target."""
        self.lanes[below] += 1
        lane = (self.bottom + V_GAP // 2 + LANE * (self.lanes[1] - 1) if below
                else -V_GAP // 2 - LANE * (self.lanes[0] - 1))
        rows = max(self.row.values()) + 1

        def open_side(node: str) -> bool:
            r = self.row[node]
            return self.clear([(self.layer[node], x) for x in
                               (range(r + 1, rows) if below else range(r))])

        def side(b: Box) -> int:
            return b.bottom if below else b.y

        if hung or open_side(src):
            start = [(s.cx, side(s))]
        else:
            start = [(s.right, s.cy), (self.gap_after(src), s.cy)]
        if open_side(target):
            end = [(t.cx, lane), (t.cx, side(t))]
        else:
            x = self.gap_before(target)
            end = [(x, lane), (x, t.cy), (t.x, t.cy)]
        return [*start, (start[-1][0], lane), *end]
