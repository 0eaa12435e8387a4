"""tasks/validate.py's validation process: Great Expectations runs there, answers as it would in process, and a
process that dies fails the validation it was doing with a reason, not the run."""

import os
import signal

import pyarrow as pa
import pytest

from conftest import recorded_countries
from tasks import validate
from tasks.tables import COUNTRIES

PARAMETERS = {"today": "2026-12-04", "current_year": 2026}


@pytest.fixture(scope="module")
def countries() -> pa.Table:
    table = recorded_countries()
    names = table["name"].to_pylist()
    names[3] = None  # a null where the schema says not null
    return table.set_column(table.schema.get_field_index("name"), COUNTRIES.schema.field("name"),
                            pa.array(names, pa.string()))


def test_the_validation_process_answers_as_great_expectations_does_in_process(countries, tmp_path):
    validator = validate.IsolatedValidator(tmp_path / "docs")
    isolated = validator.validate(COUNTRIES, countries, PARAMETERS)
    validator.build_docs()  # its context released: the tests after it start from no context
    local = validate.Validator().validate(COUNTRIES, countries, PARAMETERS)
    assert not isolated.success
    assert [str(f) for f in isolated.table_failures] == [str(f) for f in local.table_failures]
    assert any(f.expectation == "expect_column_values_to_not_be_null" and f.kwargs["column"] == "name"
               for f in isolated.table_failures)
    assert isolated.failures == local.failures


def test_a_validation_process_that_dies_fails_that_validation_and_the_next_one_starts_a_new_process(countries):
    validator = validate.IsolatedValidator()
    validator.validate(COUNTRIES, countries, PARAMETERS)
    first = validate._WORKER.process.pid
    os.kill(first, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    with pytest.raises(RuntimeError, match=r"the validation process ended unexpectedly \(exit code -9\)"):
        validator.validate(COUNTRIES, countries, PARAMETERS)
    assert not validator.validate(COUNTRIES, countries, PARAMETERS).success, "a new process validates"
    assert validate._WORKER.process.pid != first
    validator.build_docs()


def test_data_docs_are_built_there_and_the_process_ends_with_the_last_context(countries, tmp_path):
    one, two = validate.IsolatedValidator(tmp_path / "one"), validate.IsolatedValidator(tmp_path / "two")
    one.validate(COUNTRIES, countries, PARAMETERS)
    two.validate(COUNTRIES, countries, PARAMETERS)
    process = validate._WORKER.process
    one.build_docs()
    assert (tmp_path / "one" / "index.html").is_file() and not (tmp_path / "two").exists()
    assert validate._WORKER.process is process and process.poll() is None, "two's context is still there"
    two.build_docs()
    assert (tmp_path / "two" / "index.html").is_file()
    assert validate._WORKER.process is None and process.poll() is not None, "no context left: the process ended"
    two.build_docs()  # again (a run that finishes after its outputs were built): nothing to do, nothing started
    assert validate._WORKER.process is None


def test_data_docs_that_cannot_be_written_are_an_error_and_the_process_ends_all_the_same(countries, tmp_path):
    blocked = tmp_path / "docs"
    blocked.write_text("a file where the Data Docs folder belongs")
    validator = validate.IsolatedValidator(blocked)
    validator.validate(COUNTRIES, countries, PARAMETERS)
    process = validate._WORKER.process
    with pytest.raises(RuntimeError):
        validator.build_docs()
    assert validate._WORKER.process is None and process.poll() is not None, "it held nothing more: it ended"
