"""Identity strings that pseudonyms are computed from.

Written as small pure functions so that the ingest step and the demo generator (which
must predict the pseudonyms it plants as ground truth) can never disagree.
"""

from __future__ import annotations


def code_identity(personal_code: str) -> str:
    """Identity of a person known by a valid Estonian personal code (isikukood)."""
    return "ik:" + personal_code
