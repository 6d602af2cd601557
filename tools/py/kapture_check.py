"""Loads a kapture folder with NAVER LABS' `kapture` package (the reference reader) and prints
what it holds as JSON: sensors (with camera model parameters), rigs, trajectories
(device_from_world as qw qx qy qz tx ty tz), camera records, per-type keypoint/descriptor
dtype, dsize and per-image counts plus the first row, matches per pair, 3D points and
observations. Used by crates/hdmap-io/tests/kapture.rs to check our reader and writer.

usage: kapture_check.py KAPTURE_DIR
"""
import json
import sys

import kapture
import kapture.io.csv as kcsv
import kapture.io.features as kfeat
from kapture.io.records import get_image_fullpath  # noqa: F401  (import check of the package)


def main(root):
    k = kcsv.kapture_from_dir(root)
    out = {"sensors": {}, "rigs": [], "trajectories": [], "records_camera": [], "keypoints": {},
           "descriptors": {}, "matches": {}, "points3d": [], "observations": []}
    for sid, s in (k.sensors or {}).items():
        entry = {"name": s.name or "", "type": s.sensor_type}
        if isinstance(s, kapture.Camera):
            entry["model"] = s.camera_type.value
            entry["params"] = [float(v) for v in s.camera_params]
        out["sensors"][sid] = entry
    for rig_id, rig in (k.rigs or {}).items():
        for sid, pose in rig.items():
            out["rigs"].append([rig_id, sid] + [float(v) for v in pose.r_raw] + [float(v) for v in pose.t_raw])
    for ts, dev, pose in kapture.flatten(k.trajectories or {}, is_sorted=True):
        out["trajectories"].append([int(ts), dev] + [float(v) for v in pose.r_raw] + [float(v) for v in pose.t_raw])
    for ts, dev, path in kapture.flatten(k.records_camera or {}, is_sorted=True):
        out["records_camera"].append([int(ts), dev, path])
    for ty, kps in (k.keypoints or {}).items():
        files = {}
        for image in sorted(kps):
            arr = kfeat.image_keypoints_from_file(
                kfeat.get_keypoints_fullpath(ty, root, image), kps.dtype, kps.dsize)
            files[image] = {"count": int(arr.shape[0]), "first": [float(v) for v in arr[0]]}
        out["keypoints"][ty] = {"dtype": str(kps.dtype.__name__ if hasattr(kps.dtype, "__name__") else kps.dtype),
                                "dsize": int(kps.dsize), "files": files}
    for ty, ds in (k.descriptors or {}).items():
        files = {}
        for image in sorted(ds):
            arr = kfeat.image_descriptors_from_file(
                kfeat.get_descriptors_fullpath(ty, root, image), ds.dtype, ds.dsize)
            files[image] = {"count": int(arr.shape[0]), "first": [float(v) for v in arr[0]]}
        out["descriptors"][ty] = {"dsize": int(ds.dsize), "keypoints_type": ds.keypoints_type,
                                  "metric_type": ds.metric_type, "files": files}
    for ty, ms in (k.matches or {}).items():
        pairs = {}
        for a, b in sorted(ms):
            arr = kfeat.image_matches_from_file(kfeat.get_matches_fullpath((a, b), ty, root))
            pairs[f"{a}|{b}"] = {"count": int(arr.shape[0]), "first": [float(v) for v in arr[0]]}
        out["matches"][ty] = pairs
    if k.points3d is not None:
        out["points3d"] = [[float(v) for v in row] for row in k.points3d.as_array()]
    if k.observations is not None:
        for pid, ty in sorted(k.observations.key_pairs()):
            out["observations"].append([int(pid), ty, [[img, int(f)] for img, f in k.observations[pid, ty]]])
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
