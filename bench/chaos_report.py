#!/usr/bin/env python3
"""Run the chaos scenarios at full size (TORII_CHAOS_SCALE=full) on the local stack and print one table.

    source .stack/env && .venv/bin/python bench/chaos_report.py [--short] [-k EXPR]

Each scenario writes one row of figures (objects, faults injected, time to converge, duplicates, orphans,
missing, untrue statuses, leaked secrets) to a JSON-lines file; this prints them with the machine and versions.
The exit status is pytest's: a scenario whose audit finds anything fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = [
    ("scenario", "scenario"), ("objects", "objects"), ("faults", "faults injected"),
    ("converge_s", "converge (s)"), ("duplicates", "duplicates"), ("orphans", "orphans"), ("missing", "missing"),
    ("untrue", "untrue status"), ("leaked", "leaked secrets"),
]  # fmt: skip


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " | extra |", "|" + "---|" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = [str(row.get(key, "-" if key != "leaked" else 0)) for key, _ in COLUMNS]
        extra = ", ".join(f"{k}={v}" for k, v in row.items() if k not in {c for c, _ in COLUMNS} | {"scale"})
        lines.append("| " + " | ".join(cells) + f" | {extra} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the in-suite sizes instead of the full ones")
    parser.add_argument("-k", default="", help="only scenarios matching this pytest expression")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.jsonl"
        env = {**os.environ, "TORII_CHAOS_REPORT": str(rows_file)}
        if not args.short:
            env["TORII_CHAOS_SCALE"] = "full"
        command = [sys.executable, "-m", "pytest", "-q", "-m", "chaos", str(ROOT / "tests" / "chaos")]
        if args.k:
            command += ["-k", args.k]
        done = subprocess.run(command, cwd=ROOT, env=env, check=False)
        rows = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.exists() else []
    print()
    print(f"Chaos run {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, "
          f"scale {'short' if args.short else 'full'}; pytest exit {done.returncode}")  # fmt: skip
    print(table(rows))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
