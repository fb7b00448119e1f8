"""Questionnaires and persona tables that ship with survey-sim."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_dir(kind: str) -> Path:
    """Folder of bundled ``"questionnaires"`` or ``"personas"``.

    Wheels carry them inside the package (``survey_sim/bundled/``); a source checkout or
    editable install reads them from the repository's top-level folders.
    """
    for candidate in (_PACKAGE_DIR / "bundled" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled {kind} not found; is survey-sim installed completely?")


def bundled_file(kind: str, name: str) -> Path:
    """Path of one bundled file: ``bundled_file("personas", "us_adults_demo.yaml")``."""
    path = bundled_dir(kind) / name
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in bundled_dir(kind).iterdir()))
        raise FileNotFoundError(f"no bundled {kind} file {name!r} (available: {available})")
    return path
