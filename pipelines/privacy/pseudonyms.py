"""Keyed pseudonyms: the same person gets the same pseudonym in every wave and instrument.

A pseudonym is HMAC-SHA-256 of a normalised identity under a key derived from the study's
secret, so linking needs no lookup table and nobody without the secret can recompute or
reverse it. Each kind of unit (pupils, staff, schools) has its own derived key, so a
pupil's and a teacher's pseudonyms can never be joined by accident, and rotating the
secret changes every pseudonym at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Domains with their own derived key, and the prefix that makes a pseudonym's kind
#: visible in a table ("P-" pupil, "S-" staff, "K-" kool/school).
DOMAIN_PREFIX: dict[str, str] = {"pupil": "P-", "staff": "S-", "school": "K-"}

#: The derived key from which each released table's own key is made.
RELEASE_DOMAIN = "release"
_KEY_BYTES = 32
_PSEUDONYM_CHARS = 16  # 80 bits of base32: collision-free far beyond a national cohort
_DIGEST_BYTES = _PSEUDONYM_CHARS * 5 // 8  # the digest bytes the characters encode
assert _DIGEST_BYTES * 8 == _PSEUDONYM_CHARS * 5, "pseudonym length must be a whole number of bytes"
_B32_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype=np.uint8)


class MissingKeyError(RuntimeError):
    """The study has no pseudonymisation key where its configuration says to look."""


@dataclass(frozen=True)
class PseudonymKeys:
    """The per-domain keys derived from one study secret. Never logged or printed."""

    _keys: dict[str, bytes]

    @classmethod
    def from_secret(cls, secret: bytes) -> "PseudonymKeys":
        if len(secret) < 16:
            raise ValueError("the pseudonymisation secret is shorter than 16 bytes: make a new one")
        domains = [*DOMAIN_PREFIX, RELEASE_DOMAIN]
        return cls({d: hmac.new(secret, f"mapstudy/v1/{d}".encode(), hashlib.sha256).digest() for d in domains})

    def pseudonym(self, domain: str, identity: str) -> str:
        """Pseudonym of an already-normalised identity string in a domain."""
        digest = hmac.new(self._keys[domain], identity.encode("utf-8"), hashlib.sha256).digest()
        return DOMAIN_PREFIX[domain] + base64.b32encode(digest).decode("ascii")[:_PSEUDONYM_CHARS]

    def pseudonyms(self, domain: str, identities: Iterable[object]) -> list[str | None]:
        """``pseudonym(domain, i)`` for each identity, None where it is not a string.

        The same values as one call per row, faster: the keyed HMAC is set up once and
        copied per value, each distinct identity is hashed once, and the base32 of all
        digests is computed as one array (10 digest bytes are exactly 16 characters).
        """
        keyed = hmac.new(self._keys[domain], digestmod=hashlib.sha256)
        values = _objects(list(identities))
        is_text = np.fromiter((isinstance(v, str) for v in values.tolist()), dtype=bool, count=len(values))
        codes, distinct = pd.factorize(values[is_text])  # each distinct identity once (str equality, as a dict)
        digests = []
        for identity in distinct.tolist():
            mac = keyed.copy()
            mac.update(identity.encode("utf-8"))
            digests.append(mac.digest()[:_DIGEST_BYTES])
        texts = _objects([DOMAIN_PREFIX[domain] + t for t in _base32(digests)])
        out = np.full(len(values), None, dtype=object)
        out[is_text] = texts[codes]
        return out.tolist()

    def release_pseudonym(self, release: str, pseudonym: str) -> str:
        """The pseudonym a released table shows instead of ``pseudonym``.

        Each released table (``share.pupils``, ``share.pilot`` ...) gets its own key, so
        rows link within the table (a pupil's waves) but not across released tables or to
        the anon tables: a key history across tables would be longer than the one whose
        k-anonymity was measured. The prefix of the original pseudonym is kept.
        """
        release_key = hmac.new(self._keys[RELEASE_DOMAIN], release.encode("utf-8"), hashlib.sha256).digest()
        digest = hmac.new(release_key, pseudonym.encode("utf-8"), hashlib.sha256).digest()
        return pseudonym[:2] + base64.b32encode(digest).decode("ascii")[:_PSEUDONYM_CHARS]

    def fingerprint(self) -> str:
        """A short one-way hash of the derived keys: tells keys apart, reveals nothing of them.

        The erasure register records it, so that a run under another key is noticed.
        """
        digest = hashlib.sha256(b"mapstudy/v1/fingerprint")
        for domain in sorted(self._keys):
            digest.update(hashlib.sha256(self._keys[domain]).digest())
        return digest.hexdigest()[:16]

    def __repr__(self) -> str:  # keep keys out of tracebacks, logs and debuggers' output
        return "PseudonymKeys(<hidden>)"


def _objects(items: list) -> np.ndarray:
    """A 1-D object array of the items (np.array would convert or nest them)."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _base32(digests: list[bytes]) -> list[str]:
    """``base64.b32encode(d)`` of equal-length digests whose bits fill whole characters."""
    if not digests:
        return []
    raw = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), -1)
    bits = np.unpackbits(raw, axis=1).reshape(len(digests), -1, 5)
    chars = _B32_ALPHABET[bits @ np.array([16, 8, 4, 2, 1], dtype=np.uint8)]
    return np.ascontiguousarray(chars).view(f"S{chars.shape[1]}").ravel().astype(str).tolist()


def _decode_secret(text: str) -> bytes:
    """A secret is stored as hex (what `mapstudy key new` writes) or as any other text."""
    text = text.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode("utf-8")


def load_secret(env_var: str | None, key_file: Path | None) -> bytes:
    """Read the study secret from the environment variable, else from the key file.

    The error names where it looked, never what it found.
    """
    if env_var and os.environ.get(env_var):
        return _decode_secret(os.environ[env_var])
    if key_file is not None and key_file.is_file():
        return _decode_secret(key_file.read_text(encoding="utf-8"))
    places = [f"environment variable {env_var}" if env_var else None, f"key file {key_file}" if key_file else None]
    raise MissingKeyError(
        "no pseudonymisation key found (looked in: "
        + ", ".join(p for p in places if p)
        + "). Create one with `mapstudy key new --out FILE` and keep it outside the repository."
    )


def new_secret_hex() -> str:
    """A fresh random secret, hex-encoded, for `mapstudy key new`."""
    return secrets.token_hex(_KEY_BYTES)


def demo_secret_hex(seed: int) -> str:
    """The demo study's secret, derived from its seed so every clone gets the same demo.

    Only for generated data: a real study's key must be random (`new_secret_hex`).
    """
    return hashlib.sha256(f"mapstudy-demo-key/{seed}".encode()).hexdigest()


def write_key_file(path: Path, secret_hex: str) -> None:
    """Write a key file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secret_hex + "\n", encoding="utf-8")
    path.chmod(0o600)
