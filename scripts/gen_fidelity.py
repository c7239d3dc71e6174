#!/usr/bin/env python
"""Regenerate docs/fidelity.md from the fidelity cases in tests/fidelity/matrix.py.

python scripts/gen_fidelity.py          # write the file
python scripts/gen_fidelity.py --check  # exit 1 when the file is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.fidelity.matrix import render_markdown  # noqa: E402

DOC = ROOT / "docs" / "fidelity.md"


def main() -> int:
    text = render_markdown() + "\n"
    if "--check" in sys.argv[1:]:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is stale: run python scripts/gen_fidelity.py", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
