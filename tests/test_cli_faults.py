"""Issue 17, cases 6 and 12, and `predictlib info`: the CLI under faulty input files.
It accepts exactly what the Python API accepts (a cell becomes the value the API is
given, refused with the API's reason), loses no row (every good row written, every bad
line reported with its line number), writes -o atomically and says with its exit
status what happened."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import predictlib
from predictlib import _cli
from predictlib.build.project import Built
from predictlib.build.stages.verify import records_from_frame

pytestmark = pytest.mark.slow


def run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    """The CLI in this process: (exit status, stdout, stderr)."""
    status = _cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def csv_text(records: list[dict[str, Any]], columns: list[str]) -> str:
    """Records as CSV the way a user writes them (missing values as empty cells)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        cells = []
        for c in columns:
            v = record.get(c)
            cells.append("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
        writer.writerow(cells)
    return out.getvalue()


def write_csv(
    tmp_path: Path, records: list[dict[str, Any]], columns: list[str], name: str = "in.csv"
) -> Path:
    data = tmp_path / name
    data.write_text(csv_text(records, columns), encoding="utf-8")
    return data


def predict_two(
    capsys: pytest.CaptureFixture[str], folder: Path, data: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """The CLI's two output rows for a file of two records (and exit status 0)."""
    status, out, _ = run(capsys, "predict", folder, data)
    assert status == 0
    first, second = rows_of(out)
    return first, second


@pytest.fixture(scope="module")
def houses(house_prices: Built) -> list[dict[str, Any]]:
    return records_from_frame(house_prices.trained.X_test.iloc[:12])


@pytest.fixture(scope="module")
def columns(house_prices: Built) -> list[str]:
    return list(house_prices.trained.X_test.columns)


@dataclass(frozen=True)
class HouseCli:
    """The CLI run in this process against house_prices, with its test records and a scratch folder."""

    capsys: pytest.CaptureFixture[str]
    built: Built
    houses: list[dict[str, Any]]
    columns: list[str]
    tmp_path: Path

    def run(self, *args: Any) -> tuple[int, str, str]:
        return run(self.capsys, *args)

    def predict(self, data: Path, *options: Any) -> tuple[int, str, str]:
        """``predictlib predict <house_prices> data *options``: (exit status, stdout, stderr)."""
        return run(self.capsys, "predict", self.built.folder, data, *options)

    def expect(self, status: int, message: str, data: Path, *options: Any) -> str:
        """Predicts, asserts the exit status and that stderr says ``message``; returns stdout."""
        got, out, err = self.predict(data, *options)
        assert got == status and message in err, (got, err)
        return out

    def csv(self, records: list[dict[str, Any]], name: str = "in.csv") -> Path:
        return write_csv(self.tmp_path, records, self.columns, name)

    def lines(self, count: int) -> list[str]:
        """The header and the first ``count`` records as CSV lines."""
        return csv_text(self.houses[:count], self.columns).splitlines()


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    house_prices: Built,
    houses: list[dict[str, Any]],
    columns: list[str],
    tmp_path: Path,
) -> HouseCli:
    return HouseCli(capsys, house_prices, houses, columns, tmp_path)


def api_error(model: predictlib.Model, record: dict[str, Any]) -> str:
    """The reason the API gives for a record it refuses, as the CLI words it."""
    with pytest.raises(predictlib.InputError) as caught:
        model.predict([record])
    return "; ".join(str(p).split(", ", 1)[1] if p.row is not None else str(p) for p in caught.value.problems)


def assert_as_the_api(model: predictlib.Model, record: dict[str, Any], row: dict[str, str]) -> None:
    """The CLI's row for line 3 is what the API gives for ``record``: its prediction or its refusal."""
    try:
        expected = model.predict(record)
    except predictlib.InputError:
        assert row["prediction"] == "" and row["error"] == f"line 3: {api_error(model, record)}"
    else:
        assert row["error"] == "" and float(row["prediction"]) == expected


# ------------------------------------------------- 6: the CLI accepts what the API accepts

NUMBER_CELLS: dict[str, Any] = {
    "1_000": "1_000",  # Python's int() reads it; pandas.read_csv and the API do not
    "\u0663": "\u0663",  # Arabic-Indic 3
    "\uff14\uff13": "\uff14\uff13",  # full-width 43
    "43\xa0": "43\xa0",
    "0x10": "0x10",
    " 8450 ": 8450,  # pandas strips ASCII spaces
    "8450.0": 8450.0,
    "+8.45e3": 8450.0,
    "1e400": math.inf,  # beyond float64, as pandas reads it
    "-inf": -math.inf,
    "9" * 400: int("9" * 400),  # beyond float64: refused
    "9" * 5000: None,  # more digits than int() reads: refused as beyond float64
}


@pytest.mark.parametrize("cell", list(NUMBER_CELLS), ids=lambda c: repr(c[:12]))
def test_6_number_cells_are_the_values_the_api_takes(cli: HouseCli, cell: str) -> None:
    model = predictlib.load(cli.built.folder)
    houses = cli.houses
    first, second = predict_two(
        cli.capsys, cli.built.folder, cli.csv([houses[1], {**houses[0], "LotArea": cell}])
    )
    assert first["error"] == "" and float(first["prediction"]) == model.predict(houses[1])
    value = NUMBER_CELLS[cell]
    if value is None:
        assert (
            second["error"]
            == "line 3: column 'LotArea': value <int of 5,000 digits>: expected a number in the float64 range"
        )
        return
    assert_as_the_api(model, {**houses[0], "LotArea": value}, second)


DATE_CELLS: dict[str, Any] = {
    "2007-03-01": np.datetime64("2007-03-01"),
    "2007-03-01T10:30": np.datetime64("2007-03-01T10:30"),
    "2007-03-01 10:30:15.123456789": np.datetime64("2007-03-01T10:30:15.123456789"),
    "1600-01-01": np.datetime64("1600-01-01"),  # outside the nanosecond range: refused, never wrapped
    "2300-01-01": np.datetime64("2300-01-01"),
    "20070301": "20070301",  # not ISO 8601's extended form: text, refused
    "now": "now",
    "2007-02-30": "2007-02-30",
    "2007-03-31T23:00:00-05:00": None,  # a time zone: refused as any aware datetime
    "2007-03-31T23:00:00Z": None,
}


@pytest.mark.parametrize("cell", list(DATE_CELLS))
def test_6_datetime_cells_are_the_values_the_api_takes(
    capsys: pytest.CaptureFixture[str], built_models: dict[str, Built], tmp_path: Path, cell: str
) -> None:
    built = built_models["house_dated"]
    model = predictlib.load(built.folder)
    frame = built.trained.X_test.iloc[:2]
    records = records_from_frame(frame)
    record = {**records[0], "SaleDate": cell}
    data = write_csv(
        tmp_path, [{**records[1], "SaleDate": str(records[1]["SaleDate"])}, record], list(frame.columns)
    )
    first, second = predict_two(capsys, built.folder, data)
    assert first["error"] == "" and float(first["prediction"]) == pytest.approx(
        model.predict(records[1]), rel=1e-12
    )
    value = DATE_CELLS[cell]
    if value is None:
        assert second["prediction"] == "" and "expected a naive datetime (no time zone)" in second["error"]
        return
    assert_as_the_api(model, {**records[0], "SaleDate": value}, second)


# ------------------------------------------------------------- 12: nothing lost


def test_12_csv_faults_lose_no_row(cli: HouseCli) -> None:
    model, houses, columns = predictlib.load(cli.built.folder), cli.houses, cli.columns
    header, *good = cli.lines(8)
    lines = [header, good[0], good[1] + ",extra", good[2], "", good[3], good[4]]  # 3: ragged, 5: blank
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    where = columns.index("Neighborhood")
    cells = next(csv.reader([good[5]]))
    cells[where] = "\udcff" + cells[where]  # line 8: a byte that is not UTF-8
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    raw += buffer.getvalue().encode("utf-8", "surrogateescape")
    raw += good[6].encode("utf-8") + b"\n\n\n"  # trailing blank lines
    data = cli.tmp_path / "houses.csv"
    data.write_bytes(b"\xef\xbb\xbf" + raw)  # with a byte-order mark
    out = cli.tmp_path / "out.csv"
    cli.expect(3, "2 line(s) unreadable, 5 row(s) predicted", data, "-o", out, "--batch-size", "2")
    rows = rows_of(out.read_text(encoding="utf-8"))
    assert [r["row"] for r in rows] == [str(i) for i in range(7)]
    errors = {int(r["row"]): r["error"] for r in rows if r["error"]}
    assert errors == {1: "line 3: 80 cells, the header has 79", 5: "line 8: not valid UTF-8"}
    predicted = [float(r["prediction"]) for r in rows if not r["error"]]
    expected = [model.predict(houses[i]) for i in (0, 2, 3, 4, 6)]
    np.testing.assert_allclose(predicted, expected, rtol=1e-15)


def test_12_a_field_over_the_csv_module_default_and_over_the_limit(
    cli: HouseCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_text = dict(cli.houses[0], ExterQual="x" * 200_000)  # over csv's default 131,072: read
    data = cli.csv([long_text, cli.houses[1]], "long.csv")
    first, second = predict_two(cli.capsys, cli.built.folder, data)
    assert "line 2: column 'ExterQual'" in first["error"] and second["error"] == ""
    monkeypatch.setattr(_cli, "MAX_FIELD_CHARS", 100_000)  # over the limit: that line only
    first, second = rows_of(cli.expect(3, "", data))
    assert (
        first["error"].startswith("line 2: not a CSV row (field larger than field limit")
        and second["error"] == ""
    )


def test_12_jsonl_faults_lose_no_row(cli: HouseCli) -> None:
    model, houses = predictlib.load(cli.built.folder), cli.houses

    def line(record: dict[str, Any]) -> bytes:
        return json.dumps(record, allow_nan=True).encode()

    lines = [
        line(houses[0]),
        b"{not json",  # 2
        line(houses[1]),
        b"[1, 2]",  # 4: not a record
        b'{"LotArea": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",  # 5: deep
        line(houses[2]).replace(
            b'"LotArea": ', b'"LotArea": ' + b"9" * 5000 + b', "x": '
        ),  # 6: 5000-digit int
        line(houses[3]).replace(b"CollgCr", b"Coll\xffCr").replace(b'"RL"', b'"R\xffL"'),  # 7: not UTF-8
        b"",
        b"   ",
        line(houses[4]),  # 10
    ]
    data = cli.tmp_path / "houses.jsonl"
    data.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n\n")
    rows = rows_of(
        cli.expect(3, "1 row(s) refused, 4 line(s) unreadable, 3 row(s) predicted", data, "--batch-size", "3")
    )
    assert [r["row"] for r in rows] == [str(i) for i in range(8)]
    errors = [r["error"] for r in rows]
    assert errors[0] == errors[2] == errors[7] == ""
    assert errors[1].startswith("line 2: not valid JSON")
    assert errors[3] == "line 4: not a JSON object (a record), got list"
    assert errors[4] == "line 5: not a record: JSON nested too deeply"
    assert (
        errors[5]
        == "line 6: column 'LotArea': value <int of 5,000 digits>: expected a number in the float64 range"
    )
    assert errors[6].startswith("line 7: not valid UTF-8 (byte 0xff")
    expected = model.predict([houses[0], houses[1], houses[4]])
    np.testing.assert_array_equal([float(rows[i]["prediction"]) for i in (0, 2, 7)], expected)


def test_12_the_output_is_written_atomically(cli: HouseCli) -> None:
    tmp_path = cli.tmp_path
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    os.chmod(out, 0o640)
    cli.expect(2, "cannot read", tmp_path / "missing.csv", "-o", out)
    assert out.read_text() == "previous results\n"  # a missing input never truncates -o
    status, _, _ = cli.run("predict", "no-such-model", tmp_path / "missing.csv", "-o", out)
    assert status == 2 and out.read_text() == "previous results\n"
    data = cli.csv(cli.houses[:3])
    cli.expect(0, "", data, "-o", out)
    assert len(rows_of(out.read_text())) == 3
    assert os.stat(out).st_mode & 0o777 == 0o640  # the file replaced keeps its permissions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]  # no temporary left
    cli.expect(2, "cannot write", data, "-o", tmp_path / "no" / "such" / "dir.csv")


def test_12_errors_fail_stops_and_keeps_the_rows_before(cli: HouseCli) -> None:
    header, *good = cli.lines(4)
    data = cli.tmp_path / "in.csv"
    data.write_text("\n".join([header, good[0], good[1], good[2] + ",x", good[3]]) + "\n", encoding="utf-8")
    out = cli.tmp_path / "out.csv"
    cli.expect(1, "row 2 (line 4)", data, "-o", out, "--errors", "fail")
    assert [r["row"] for r in rows_of(out.read_text())] == ["0", "1"]
    cli.expect(3, "row 2 (line 4) skipped", data, "-o", out, "--errors", "skip")
    assert [r["row"] for r in rows_of(out.read_text())] == ["0", "1", "3"]


def test_12_a_duplicated_model_column_in_the_header_and_a_bad_header(cli: HouseCli) -> None:
    header, first = cli.lines(1)
    data = cli.tmp_path / "in.csv"
    data.write_text(f"{header},LotArea\n{first},1\n", encoding="utf-8")
    cli.expect(2, "names column(s) ['LotArea'] more than once", data)
    data.write_bytes(b'"unterminated\n')
    cli.expect(2, "cannot read the header", data)
    data.write_bytes(b"")
    assert rows_of(cli.expect(0, "", data)) == []


def test_12_the_command_line_reads_stdin_and_documents_its_status(
    house_prices: Built, houses: list[dict[str, Any]], columns: list[str]
) -> None:
    text = "\ufeff" + csv_text(houses[:3], columns) + "\n"
    done = subprocess.run(
        [sys.executable, "-m", "predictlib", "predict", str(house_prices.folder), "-"],
        input=text.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [r["error"] for r in rows_of(done.stdout.decode())] == ["", "", ""]
    helptext = subprocess.run(
        [sys.executable, "-m", "predictlib", "predict", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Exit status: 0:" in " ".join(helptext.split()) and "3: done, but some lines" in " ".join(
        helptext.split()
    )


# --------------------------------------------------------------------- predictlib info


def test_info_lists_each_reason_once_and_only_those_a_kind_allows(
    capsys: pytest.CaptureFixture[str], built_models: dict[str, Built]
) -> None:
    for name, built in built_models.items():
        model = predictlib.load(built.folder)
        status, out, _ = run(capsys, "info", built.folder)
        assert status == 0
        kinds = {c["name"]: c["kind"] for c in model.manifest["inputs"]["columns"]}
        lines = {line.strip().split(" (")[0]: line for line in out.splitlines() if line.startswith("    ")}
        for column, kind in kinds.items():
            line = lines[column]
            reasons = line.split(" - refused when: ", 1)[1].split("; ") if " - refused when: " in line else []
            assert len(reasons) == len(set(reasons)), (name, column)
            assert reasons == list(model.refusal_reasons()[column]), (name, column)
            if kind != "number":
                assert not any("infinite" in r or "float32" in r for r in reasons), (name, column, reasons)
        status, out, _ = run(capsys, "info", built.folder, "--json")
        assert status == 0 and json.loads(out) == built.manifest
    # house_prices: an ordinal encoder refuses unseen categories of some columns only
    reasons = predictlib.load(built_models["house_prices"].folder).refusal_reasons()
    assert any("category not seen in training" in r for r in reasons["Alley"])
    assert reasons["LotShape"] == ()
