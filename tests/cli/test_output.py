from __future__ import annotations

import json

import pytest
import yaml

from cloudlet.cli.output import emit, parse_format, render_table

ROWS = [
    {"projectId": "alpha-one", "name": "Alpha", "projectNumber": "111111111111"},
    {"projectId": "b-two-long-id", "name": "B", "projectNumber": "2"},
]
COLUMNS = [("PROJECT_ID", "projectId"), ("NAME", "name"), ("PROJECT_NUMBER", "projectNumber")]


def test_table_is_gcloud_shaped() -> None:
    assert render_table(ROWS, COLUMNS).splitlines() == [
        "PROJECT_ID     NAME   PROJECT_NUMBER",
        "alpha-one      Alpha  111111111111",
        "b-two-long-id  B      2",
    ]


def test_json_yaml_and_value(capsys: pytest.CaptureFixture[str]) -> None:
    emit(ROWS, "json", COLUMNS)
    assert json.loads(capsys.readouterr().out) == ROWS
    emit(ROWS[0], "yaml")
    assert yaml.safe_load(capsys.readouterr().out) == ROWS[0]
    emit(ROWS, "value(projectId,projectNumber)")
    assert capsys.readouterr().out == "alpha-one\t111111111111\nb-two-long-id\t2\n"
    emit(ROWS, "table(projectId)")
    assert capsys.readouterr().out.splitlines()[0] == "PROJECTID"


def test_nested_fields(capsys: pytest.CaptureFixture[str]) -> None:
    emit([{"config": {"name": "x.googleapis.com"}}], "value(config.name)")
    assert capsys.readouterr().out == "x.googleapis.com\n"


def test_empty_list_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    emit([], "", COLUMNS)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Listed 0 items." in captured.err


@pytest.mark.parametrize("bad", ["xml", "value", "table(", "json(x"])
def test_bad_format_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="format"):
        parse_format(bad)
