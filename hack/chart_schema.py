#!/usr/bin/env python3
"""Refresh the tenancy definitions of helm/torii/values.schema.json from the pydantic models (`make crds`)."""

from __future__ import annotations

import json
from pathlib import Path

from torii.tenancy.config import chart_schema_definitions

SCHEMA = Path(__file__).resolve().parent.parent / "helm" / "torii" / "values.schema.json"


def main() -> None:
    schema = json.loads(SCHEMA.read_text())
    schema["definitions"] = chart_schema_definitions()
    SCHEMA.write_text(json.dumps(schema, indent=2) + "\n")
    print(f"wrote {SCHEMA}")


if __name__ == "__main__":
    main()
