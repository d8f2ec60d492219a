"""What the ingest reads besides the study's settings, as hashes: for skipping an unchanged ingest.

pipelines/freshness.py compares these with the ones recorded when the ingest last ran.
Kept apart from the ingest itself so that `mapstudy run` can tell that nothing changed
without importing the ingest or Dagster's assets.
"""

from __future__ import annotations

from pipelines.config import Study, file_sha256


def ingest_inputs(config: Study, study) -> dict[str, str]:
    """Every input file's hash, the key's fingerprint, the erasure register, the git commit
    the ingest writes into meta.provenance, and ``study.accept_partial`` (a partial ingest is
    redone, and stops, without it). Only hashes and fingerprints: nothing here can identify
    anyone."""
    from pipelines.privacy.erasure import register_path
    from pipelines.privacy.pseudonyms import PseudonymKeys, load_secret
    from pipelines.provenance import code_version

    inputs = {}
    for item in config.inputs:
        path = config.raw_path / item.path
        inside = path.resolve().is_relative_to(config.raw_path.resolve())  # never read through a symlink out
        inputs[f"file {item.path}"] = file_sha256(path)[:16] if inside and path.is_file() else "missing"
    register = register_path(config)
    inputs["erasure register"] = file_sha256(register)[:16] if register.is_file() else "none"
    key_file = config.resolve(config.secret.file) if config.secret.file else None
    inputs["key"] = PseudonymKeys.from_secret(load_secret(config.secret.env, key_file)).fingerprint()
    inputs["git commit"] = code_version()
    inputs["accept partial"] = str(study.accept_partial)
    return inputs
