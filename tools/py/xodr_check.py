#!/usr/bin/env python3
"""Loads an OpenDRIVE file with pyxodr (PyPI, 0.1.3) the way its users do and reports, as one
JSON object on stdout:

* `xml`: the root tag, header revMajor/revMinor, whether a geoReference and an offset are
  present, and the offset's x/y/z;
* `roads`, `junctions`: counts (`RoadNetwork.get_roads()`, `get_junctions()`);
* `lanes`: one entry per lane pyxodr builds: road id, lane id, type, the `hdmap:lane`
  userData value (or null), its centre line (x, y, z) and its inner and outer borders (x, y),
  in file coordinates, rounded to the millimetre;
* `successors`: per lane key "road:lane", the keys of `Lane.traffic_flow_successors` (pyxodr's
  topology following road links and lane links in the direction of traffic), or an error text;
* with `--control FILE` (repeatable; a third-party file): for that file, the road and lane
  counts, and for every lane whose width is one constant `<width>` record, the difference
  between that width and pyxodr's distance between the lane's borders at mid-length; this
  shows that the way this script uses pyxodr reproduces what a file says.

usage: xodr_check.py MAP.xodr [--resolution M] [--control OTHER.xodr ...]
"""
import json
import sys

import numpy as np
from lxml import etree
from pyxodr.road_objects.network import RoadNetwork


def xml_facts(path):
    root = etree.parse(path).getroot()
    header = root.find("header")
    out = {"root": root.tag}
    if header is not None:
        out["revMajor"] = header.get("revMajor")
        out["revMinor"] = header.get("revMinor")
        geo = header.find("geoReference")
        out["geo_reference"] = (geo.text or "").strip()[:200] if geo is not None else None
        off = header.find("offset")
        out["offset"] = [float(off.get(k)) for k in ("x", "y", "z")] if off is not None else None
    return out


def user_lane(lane):
    for ud in lane.lane_xml.findall("userData"):
        if ud.get("code") == "hdmap:lane":
            return int(ud.get("value"))
    return None


def rounded(a, cols):
    return np.round(np.asarray(a, dtype=float)[:, :cols], 3).tolist()


def load(path, resolution):
    net = RoadNetwork(path, resolution=resolution)
    roads = net.get_roads()
    lanes, successors = [], {}
    for road in roads:
        for section in road.lane_sections:
            for lane in section.lanes:
                key = f"{road.id}:{lane.id}"
                lanes.append(
                    {
                        "road": road.id,
                        "lane": lane.id,
                        "section": section.lane_section_ordinal,
                        "type": lane.type,
                        "layout_lane": user_lane(lane),
                        "centre": rounded(lane.centre_line, 3),
                        "inner": rounded(lane.lane_reference_line, 2),
                        "outer": rounded(lane.boundary_line, 2),
                    }
                )
                try:
                    successors[key] = sorted(f"{s.road_id}:{s.id}" for s in lane.traffic_flow_successors)
                except Exception as e:  # pyxodr raises ValueError on inconsistent links
                    successors[key] = f"error: {e}"
    return net, roads, lanes, successors


def control(path, resolution):
    net, roads, lanes, _ = load(path, resolution)
    diffs = []
    for road in roads:
        for section in road.lane_sections:
            for lane in section.lanes:
                widths = lane.lane_xml.findall("width")
                if len(widths) != 1 or any(float(widths[0].get(k)) != 0.0 for k in "bcd"):
                    continue
                a = float(widths[0].get("a"))
                inner, outer = np.asarray(lane.lane_reference_line), np.asarray(lane.boundary_line)
                if len(inner) < 3:
                    continue
                m = len(inner) // 2
                diffs.append(abs(float(np.linalg.norm(inner[m] - outer[m])) - a))
    return {
        "file": path,
        "roads": len(roads),
        "junctions": len(net.get_junctions()),
        "lanes": len(lanes),
        "width_checks": len(diffs),
        "max_width_diff_m": max(diffs) if diffs else None,
    }


def main():
    args = sys.argv[1:]
    controls, resolution = [], 0.2
    while "--control" in args:
        i = args.index("--control")
        controls.append(args[i + 1])
        del args[i : i + 2]
    if "--resolution" in args:
        i = args.index("--resolution")
        resolution = float(args[i + 1])
        del args[i : i + 2]
    path = args[0]
    net, roads, lanes, successors = load(path, resolution)
    out = {
        "xml": xml_facts(path),
        "roads": len(roads),
        "junctions": len(net.get_junctions()),
        "lanes": lanes,
        "successors": successors,
        "controls": [control(c, resolution) for c in controls],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
