#!/usr/bin/env python3
"""Loads a Lanelet2 OSM map with the `lanelet2` package (PyPI) the way Autoware and Lanelet2
users do, and reports, as one JSON object on stdout:

* `load_errors`: what `lanelet2.io.loadRobust` could not parse;
* counts of lanelets, linestrings, points, regulatory elements;
* `validity`: `RoutingGraph.checkValidity()` for vehicles (German rules, the package default);
* `checks`: findings of checks modelled on lanelet2_validation's default validators (that tool is
  not part of the PyPI wheel): mapping.mandatory_tags, mapping.bool_tags,
  mapping.duplicated_points, mapping.points_too_close (< 1 cm), and Autoware's "every node has
  ele";
* `topology`: per lanelet id, the vehicle routing graph's following / left / right /
  adjacentLeft / adjacentRight lanelet ids;
* with `--drive FILE` (lines "x y" in the map's local UTM frame, one drive sample each): the
  drive cut into legs where it leaves the lanelets, each leg routed from the lanelet at its
  start to the one at its end, and the share of the leg's samples on the route's lanelets.

usage: lanelet2_check.py MAP.osm LAT LON [--drive FILE]
"""
import json
import math
import sys

import lanelet2
from lanelet2.core import BasicPoint2d
from lanelet2.io import Origin
from lanelet2.projection import UtmProjector


def main():
    args = sys.argv[1:]
    drive = None
    if "--drive" in args:
        i = args.index("--drive")
        drive = args[i + 1]
        del args[i : i + 2]
    path, lat, lon = args[0], float(args[1]), float(args[2])
    proj = UtmProjector(Origin(lat, lon))
    m, errors = lanelet2.io.loadRobust(path, proj)
    rules = lanelet2.traffic_rules.create(
        lanelet2.traffic_rules.Locations.Germany, lanelet2.traffic_rules.Participants.Vehicle
    )
    graph = lanelet2.routing.RoutingGraph(m, rules)
    out = {
        "load_errors": [str(e) for e in errors],
        "lanelets": len(m.laneletLayer),
        "linestrings": len(m.lineStringLayer),
        "points": len(m.pointLayer),
        "regulatory_elements": len(m.regulatoryElementLayer),
        "validity": [str(e) for e in graph.checkValidity()],
        "checks": checks(m) + nodes_without_ele(path),
        "topology": topology(m, graph),
    }
    if drive:
        out["drive"] = route_drive(m, graph, drive)
    print(json.dumps(out))


def checks(m):
    found = []
    for ll in m.laneletLayer:
        if "subtype" not in ll.attributes:
            found.append(f"mapping.mandatory_tags: lanelet {ll.id} has no subtype")
        if "one_way" in ll.attributes and ll.attributes["one_way"] not in ("yes", "no", "true", "false"):
            found.append(f"mapping.bool_tags: lanelet {ll.id} one_way={ll.attributes['one_way']}")
    for ls in m.lineStringLayer:
        if "type" not in ls.attributes:
            found.append(f"mapping.mandatory_tags: linestring {ls.id} has no type")
        pts = list(ls)
        for a, b in zip(pts, pts[1:]):
            if a.id == b.id:
                found.append(f"mapping.duplicated_points: linestring {ls.id} repeats point {a.id}")
            elif math.dist((a.x, a.y, a.z), (b.x, b.y, b.z)) < 0.01:
                found.append(f"mapping.points_too_close: linestring {ls.id} points {a.id} {b.id}")
    return found


def nodes_without_ele(path):
    """Autoware wants `ele` on every node; lanelet2's loader turns it into z, so read the XML."""
    import xml.etree.ElementTree as ET

    missing = []
    for node in ET.parse(path).getroot().iter("node"):
        if not any(t.get("k") == "ele" for t in node.iter("tag")):
            missing.append(f"autoware.ele: node {node.get('id')} has no ele")
    return missing


def topology(m, graph):
    topo = {}
    for ll in m.laneletLayer:
        ids = lambda xs: sorted(x.id for x in xs)
        one = lambda x: [x.id] if x is not None else []
        topo[str(ll.id)] = {
            "subtype": ll.attributes["subtype"] if "subtype" in ll.attributes else "",
            "following": ids(graph.following(ll)),
            "left": one(graph.left(ll)),
            "right": one(graph.right(ll)),
            "adjacent_left": one(graph.adjacentLeft(ll)),
            "adjacent_right": one(graph.adjacentRight(ll)),
        }
    return topo


def route_drive(m, graph, path):
    samples = []
    with open(path) as f:
        for line in f:
            if line.strip():
                x, y = map(float, line.split())
                samples.append((x, y))
    vehicle = [ll for ll in m.laneletLayer if graph.following(ll) or graph.previous(ll)]

    def containing(x, y):
        p = BasicPoint2d(x, y)
        return [ll for ll in vehicle if lanelet2.geometry.inside(ll, p)]

    on = [containing(x, y) for (x, y) in samples]
    legs, cur = [], []
    for i, lls in enumerate(on):
        if lls:
            cur.append(i)
        elif cur:
            legs.append(cur)
            cur = []
    if cur:
        legs.append(cur)
    report = {"samples": len(samples), "on_lanelets": sum(1 for l in on if l), "legs": []}
    for leg in legs:
        start, end = on[leg[0]], on[leg[-1]]
        length = sum(math.dist(samples[a], samples[b]) for a, b in zip(leg, leg[1:]))
        best = None
        for s in start:
            for e in end:
                route = graph.getRoute(s, e)
                if route is None:
                    continue
                sp = route.shortestPath()
                ids = {ll.id for ll in sp}
                covered = sum(1 for i in leg if any(ll.id in ids for ll in on[i]))
                if best is None or covered > best["covered"]:
                    best = {"covered": covered, "path": [ll.id for ll in sp]}
        report["legs"].append(
            {
                "samples": len(leg),
                "length_m": round(length, 1),
                "routed": best is not None,
                "covered": best["covered"] if best else 0,
                "path": best["path"] if best else [],
            }
        )
    return report


if __name__ == "__main__":
    main()
