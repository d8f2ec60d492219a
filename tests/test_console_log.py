"""The run's console log: a failed step is one line (error class and first line), no stack trace."""

import dagster as dg
import pytest

from pipelines.console_log import DEBUG_ENV, console_logger, is_consequence, short_message

FAILURE = ('Execution of step "ingest_study" failed.\n\n'
           'dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op '
           '"ingest_study"::\n\nDataLossError: 1 input file(s) would be lost\nlost: a.csv\n\n'
           'Stack Trace:\n  File "x.py", line 1, in f\n')


def test_a_step_failure_keeps_its_first_line_and_the_error():
    assert short_message(FAILURE) == 'Execution of step "ingest_study" failed: DataLossError: 1 input file(s) would be lost'


def test_other_messages_pass_unchanged_but_for_the_stack_trace():
    assert short_message("Started execution of step \"a\".") == "Started execution of step \"a\"."
    run_failure = ('Execution of run for "study" failed. Steps failed: [\'a\'].\n\n'
                   'dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred:\n\nStack Trace:\n  File')
    assert short_message(run_failure) == 'Execution of run for "study" failed. Steps failed: [\'a\'].'


def _failing_run():
    @dg.asset
    def broken():
        raise ValueError("the first line\nthe second line")

    defs = dg.Definitions(assets=[broken], jobs=[dg.define_asset_job("j")], loggers={"console": console_logger})
    return defs.resolve_job_def("j").execute_in_process(
        raise_on_error=False, run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}})


@pytest.mark.parametrize("debug", [False, True])
def test_the_console_shows_the_stack_trace_only_with_debug(debug, capsys, monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "1" if debug else "0")
    assert not _failing_run().success
    err = capsys.readouterr().err
    assert 'Execution of step "broken" failed: ValueError: the first line' in err or debug
    assert ("Stack Trace" in err) == debug


def test_steps_skipped_after_a_failure_are_not_repeated():
    assert is_consequence("reports - Dependencies for step reports__technical failed: ['ingest_study']. Not executing.")
    assert not is_consequence('Execution of step "ingest_study" failed.')
