"""Re-derive tasks/geo/countries-110m.json and tasks/geo/LICENSE from the npm registry.

Natural Earth's 1:110m country shapes as TopoJSON, packaged by Mike Bostock as world-atlas (ISC licence, LICENSE
beside this file): https://github.com/topojson/world-atlas, https://registry.npmjs.org/world-atlas. Each shape's
`id` is its ISO 3166-1 numeric code, which is the UN M49 code of a state, so the report joins shapes to
treaty_status on `m49` (tasks/report.py). Shapes without an id (N. Cyprus, Somaliland, Kosovo) match no UN state.

Run: `.venv/bin/python tasks/geo/vendor.py` (needs `npm`); it fails unless the package and the file are the bytes
vendored here. Upstream: https://registry.npmjs.org/world-atlas/-/world-atlas-2.0.2.tgz. Tables fed: none.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "world-atlas@2.0.2"
TARBALL_SHA256 = "032e7765f2ce00edaeafec23ff22bc3b77e42987c257da944cc585b452c05b97"
FILES = {"package/countries-110m.json": "2516c915867c7baf18ddec727aec46c315541a07cfb3d79a6559b05d5e94eee8",
         "package/LICENSE": None}
HERE = Path(__file__).resolve().parent


def main() -> int:
    with tempfile.TemporaryDirectory() as work:
        name = subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=work, check=True, capture_output=True,
                              text=True).stdout.split()[-1]
        tarball = Path(work) / name
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        if digest != TARBALL_SHA256:
            sys.exit(f"{PACKAGE}: sha256 {digest}, expected {TARBALL_SHA256}")
        with tarfile.open(tarball) as tar:
            for member, expected in FILES.items():
                data = tar.extractfile(member).read()
                if expected and hashlib.sha256(data).hexdigest() != expected:
                    sys.exit(f"{PACKAGE}: {member} is not the vendored file")
                (HERE / Path(member).name).write_bytes(data)
                print(f"wrote {HERE / Path(member).name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
