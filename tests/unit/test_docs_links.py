# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every link of the docs points inside the repository at something that exists, and the README stays short."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    {ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("roles/*/README.md"), *ROOT.glob("benchmarks/*.md")}
)
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # a URL outside: not checked here
        path, _sep, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        outside = not dest.exists() or (ROOT not in dest.parents and dest != ROOT)
        if outside or (anchor and dest.suffix == ".md" and anchor not in anchors(dest)):
            broken.append(target)
    assert not broken, broken


def test_no_page_points_outside_the_repository():
    for page in PAGES:
        assert not re.search(r"\.\./shared\b", page.read_text()), page


def test_the_readme_is_a_page_a_newcomer_reads_through():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_the_checkout_and_the_security_page_give_the_same_ssh_keepalives():
    """The ssh_args docs/security.md tells an estate to set are the checkout's own (one line, copied by hand)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    ssh_args = cfg["ssh_connection"]["ssh_args"]
    assert "ServerAliveInterval=" in ssh_args and "ControlPersist=" in ssh_args
    assert f"ssh_args = {ssh_args}" in (ROOT / "docs" / "security.md").read_text()
