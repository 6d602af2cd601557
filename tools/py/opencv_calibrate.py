"""OpenCV side of the intrinsics comparison (hdmap-calib tests).

Usage: opencv_calibrate.py COLS ROWS SQUARE_M CORNERS_JSON IMAGE...
CORNERS_JSON: {"image name": [[u, v], ...]} with hdmap's corners (row-major, `cols` per row),
or "-" to skip. Prints JSON with two calibrations: OpenCV's own detection
(findChessboardCorners + cornerSubPix 11×11) and OpenCV's calibrateCamera run on hdmap's
corners. Each: fx fy cx cy dist rms_px views_used.
"""
import json
import sys

import cv2
import numpy as np

cols, rows, square = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ours = json.load(open(sys.argv[4])) if sys.argv[4] != "-" else {}
images = sys.argv[5:]
objp = np.zeros((rows * cols, 3), np.float32)
objp[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * square
crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.001)
obj_cv, img_cv, obj_ours, img_ours, size = [], [], [], [], None
for path in images:
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    size = gray.shape[::-1]
    ok, c = cv2.findChessboardCorners(gray, (cols, rows), flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE)
    if ok:
        c = cv2.cornerSubPix(gray, c, (11, 11), (-1, -1), crit)
        obj_cv.append(objp)
        img_cv.append(c)
    name = path.split("/")[-1]
    if name in ours:
        obj_ours.append(objp)
        img_ours.append(np.array(ours[name], np.float32).reshape(-1, 1, 2))


def calib(obj, img):
    """calibrateCamera, then the standard outlier-view rule hdmap uses too: drop views whose
    RMS exceeds max(3 × median, 1 px) and calibrate again."""
    if len(obj) < 3:
        return None
    rms, k, d, _, _, _, _, per_view = cv2.calibrateCameraExtended(obj, img, size, None, None)
    per_view = per_view.ravel()
    limit = max(3 * float(np.median(per_view)), 1.0)
    keep = [i for i, e in enumerate(per_view) if e <= limit]
    rejected = len(obj) - len(keep)
    if rejected and len(keep) >= 3:
        obj = [obj[i] for i in keep]
        img = [img[i] for i in keep]
        rms, k, d, _, _ = cv2.calibrateCamera(obj, img, size, None, None)
    return {"fx": k[0, 0], "fy": k[1, 1], "cx": k[0, 2], "cy": k[1, 2], "dist": d.ravel().tolist(), "rms_px": rms,
            "views_used": len(obj), "views_rejected": rejected}


print(json.dumps({"opencv_detection": calib(obj_cv, img_cv), "hdmap_corners": calib(obj_ours, img_ours)}))
