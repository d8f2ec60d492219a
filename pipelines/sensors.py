"""A sensor that notices new or changed exports under the study's raw folder.

It compares a cheap signature (path, size, modification time of every file, and of the
study file itself) with the one it saw last and asks for a run of the whole study when it
differs, so a researcher who drops a corrected export into data/raw/<study>/, or edits the
study's plan, gets fresh tables and reports. Which assets the run has is the study's
(pipelines/study_definitions.py builds them from the study file the sensor watches).
"""


import hashlib

import dagster as dg

from pipelines.resources import StudyResource


def raw_signature(study: StudyResource) -> str:
    config, _ = study.load()
    root = config.raw_path
    entries = []
    if root.is_dir():
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            stat = path.stat()
            entries.append(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}")
    study_file = study.path()
    if study_file.is_file():
        stat = study_file.stat()
        entries.append(f"study:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def build_raw_files_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(job=job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
               description="Runs the study when files under data/raw/<study>/ are added or changed.")
    def raw_files_sensor(context, study: StudyResource):
        signature = raw_signature(study)
        if signature == context.cursor:
            return dg.SkipReason("no new or changed raw files")
        context.update_cursor(signature)
        return dg.RunRequest(run_key=signature)

    return raw_files_sensor
