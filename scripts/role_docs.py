"""Role variable tables in the role READMEs, made from each role's meta/argument_specs.yml (the one source).

    .venv/bin/python scripts/role_docs.py           # rewrite the tables between the markers
    .venv/bin/python scripts/role_docs.py --check   # exit 1 if a table is out of date (a unit test runs this)

A Markdown file (each roles/ROLE/README.md; any page under docs/ may too) marks a table with
<!-- BEGIN role-vars ROLE --> and <!-- END role-vars ROLE -->.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MARKED = re.compile(
    r"(<!-- BEGIN role-vars (?P<role>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- END role-vars (?P=role) -->)", re.DOTALL
)


def _text(value) -> str:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    # ansible-doc markup to Markdown: C(x) / V(x) / O(x) / RV(x) -> `x`; M(x) -> `x`.
    return re.sub(r"\b(?:C|V|O|RV|M)\(([^)]*)\)", r"`\1`", str(value)).replace("|", "\\|")


def _default(option: dict) -> str:
    if "default" not in option:
        return "(required)" if option.get("required") else ""
    value = option["default"]
    shown = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    shown = shown.removesuffix("\n...").removesuffix("...").strip()
    return "`" + shown.replace("|", "\\|") + "`"


def table(role: str) -> str:
    """The Markdown table of a role's main entry point options."""
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"].get("options") or {}
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, option in options.items():
        kind = option.get("type", "str")
        if kind == "list" and option.get("elements"):
            kind = f"list of {option['elements']}"
        choices = f" (one of {', '.join(f'`{c}`' for c in option['choices'])})" if option.get("choices") else ""
        meaning = _text(option["description"]) + choices
        rows.append(f"| `{name}` ({kind}) | {_default(option)} | {meaning} |")
    return "\n".join(rows) + "\n"


def render(readme: str) -> str:
    return MARKED.sub(lambda m: m.group(1) + table(m.group("role")) + m.group(4), readme)


def pages() -> list[Path]:
    """Every Markdown file that may hold a table."""
    return [ROOT / "README.md", *sorted(ROOT.glob("roles/*/README.md")), *sorted(ROOT.glob("docs/*.md"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--readme", action="append", help="only this file (repeatable); default: every page")
    args = parser.parse_args()
    stale = []
    for path in [Path(p) for p in args.readme] if args.readme else pages():
        current = path.read_text()
        wanted = render(current)
        if wanted == current:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_text(wanted)
    for path in stale:
        print(f"{path}: role variable tables are out of date; run scripts/role_docs.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
