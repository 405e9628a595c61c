#!/usr/bin/env python3
"""Screenshot an HTML report in Debian's headless chromium, light or dark.

    python scripts/screenshot_report.py demo-out/report.html docs/report-light.png
    python scripts/screenshot_report.py demo-out/report.html docs/report-dark.png --dark

Used for the README's picture of the demo report; the same DevTools client as the
browser tests (tests/support/cdp.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cdp import Chromium  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--dark", action="store_true", help="prefers-color-scheme: dark")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=0, help="crop to this height (0: the whole page)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rpm-shot-") as tmp:
        browser = Chromium(Path(tmp) / "profile")
        try:
            page = browser.new_page()
            page.color_scheme("dark" if args.dark else "light")
            page.open(args.html.resolve().as_uri(), width=args.width, height=args.height or 900)
            if args.height:
                png = page.screenshot()
            else:
                png = page.screenshot(full_page=True)
            page.close()
        finally:
            browser.close()
    args.png.write_bytes(png)
    print(f"wrote {args.png} ({len(png)} bytes)")


if __name__ == "__main__":
    main()
