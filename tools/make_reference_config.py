#!/usr/bin/env python3
"""Writes configs/reference.toml: every key of `hdmap run`'s config with its default (from
`hdmap run configs/demo.toml --print-config`) and, above each key, the doc comment of the Rust
field it sets (read from the struct that owns the section). The test
`hdmap-pipeline/tests/reference_config.rs` checks that the file still matches the code.

usage: tools/make_reference_config.py HDMAP_BINARY > configs/reference.toml
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# section -> (source file, struct name)
SECTIONS = {
    "job": ("crates/hdmap-pipeline/src/lib.rs", "JobConfig"),
    "inputs": ("crates/hdmap-pipeline/src/lib.rs", "InputsConfig"),
    "layout": ("crates/hdmap-layout/src/config.rs", "LayoutConfig"),
    "layout.roads": ("crates/hdmap-layout/src/roads.rs", "RoadConfig"),
    "register": ("crates/hdmap-register/src/drive.rs", "RegisterConfig"),
    "register.georef": ("crates/hdmap-register/src/georef.rs", "GeorefConfig"),
    "register.gicp": ("crates/hdmap-register/src/gicp.rs", "GicpConfig"),
    "register.anchor": ("crates/hdmap-register/src/anchor.rs", "AnchorConfig"),
    "clean": ("crates/hdmap-dynamic/src/lib.rs", "CleanConfig"),
    "clean.visibility": ("crates/hdmap-dynamic/src/visibility.rs", "VisibilityConfig"),
    "clean.model": ("crates/hdmap-dynamic/src/fusion.rs", "ModelConfig"),
    "export": ("crates/hdmap-export/src/lib.rs", "ExportConfig"),
    "export.lanelet2": ("crates/hdmap-export/src/lanelet2.rs", "Lanelet2Config"),
    "export.ngii": ("crates/hdmap-export/src/ngii.rs", "NgiiConfig"),
    "export.opendrive": ("crates/hdmap-export/src/opendrive.rs", "OpenDriveConfig"),
    "features": ("crates/hdmap-features/src/lib.rs", "FeaturesConfig"),
    "features.ndt": ("crates/hdmap-features/src/lib.rs", "NdtConfig"),
    "features.visual": ("crates/hdmap-features/src/visual.rs", "VisualConfig"),
}


def field_docs(path, struct):
    text = (ROOT / path).read_text()
    m = re.search(r"pub struct " + struct + r"\b[^{]*\{(.*?)\n\}", text, re.S)
    if not m:
        sys.exit(f"{path}: struct {struct} not found")
    docs, cur = {}, []
    for line in m.group(1).splitlines():
        s = line.strip()
        if s.startswith("///"):
            cur.append(s[3:].strip())
        elif s.startswith("pub "):
            name = s[4:].split(":")[0].strip()
            docs[name] = " ".join(cur)
            cur = []
        elif not s.startswith("#["):
            cur = []
    return docs


def main():
    eff = subprocess.run(
        [sys.argv[1], "run", str(ROOT / "configs/demo.toml"), "--print-config"],
        check=True, capture_output=True, text=True,
    ).stdout
    out = [
        "# Every key of `hdmap run CONFIG`, with its default and what it means (written by",
        "# tools/make_reference_config.py from the code; a test keeps it true). [job], [inputs],",
        "# clean.model.weights and export.ngii.geoid_undulation_m show the demo's values: they have",
        "# no defaults. Relative paths are relative to the config.",
        "",
    ]
    section = None
    docs = {}
    seen = set()

    def unset_keys():
        # Optional keys without a default are not in the effective config: show them commented.
        for key, doc in docs.items():
            table = any(f"[{section}.{key}]" in l for l in eff.splitlines())
            if key not in seen and not table:
                out.extend([f"# {doc}", f"# {key} = ...   (optional, unset by default)"])

    for line in eff.splitlines():
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            if section is not None:
                if out[-1] == "":
                    out.pop()
                unset_keys()
                out.append("")
            section = m.group(1)
            seen = set()
            if section not in SECTIONS:
                sys.exit(f"section [{section}] has no documented struct: add it to SECTIONS")
            docs = field_docs(*SECTIONS[section])
            out.append(line)
            continue
        m = re.match(r"^([a-z_0-9]+) = ", line)
        if m:
            key = m.group(1)
            seen.add(key)
            doc = docs.get(key)
            if not doc:
                sys.exit(f"[{section}] {key}: no doc comment on the field")
            out.append(f"# {doc}")
        out.append(line)
    unset_keys()
    print("\n".join(out))


if __name__ == "__main__":
    main()
