"""Loading training data: CSV with a header, .npz, .npy; every bad file is one clear InputError."""

from __future__ import annotations

import json

import numpy as np
import pytest

from symdiff.errors import InputError
from symdiff.train.data import load_data, parse_columns, write_json


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_columns_by_name_and_mapping(tmp_path):
    path = write(tmp_path, "d.csv", "label, x ,note\n1,0.5,a\n0,-2e-1,b\n\n1, 3 ,c\n")
    data = load_data(path, ["x", "y"], parse_columns(["y=label"]))
    assert data["x"].tolist() == [0.5, -0.2, 3.0]
    assert data["y"].tolist() == [1.0, 0.0, 1.0]
    assert data["x"].dtype == np.float64


def test_csv_with_byte_order_mark_and_quotes(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes('\ufeffx,"y"\n"1","2"\n'.encode())
    assert load_data(path, ["x", "y"])["y"].tolist() == [2.0]


@pytest.mark.parametrize(
    ("text", "names", "message"),
    [
        (
            "x,y\n1,2\n",
            ["x", "z"],
            r"d\.csv: no column 'z' for data 'z' \(columns: x, y\); map one",
        ),
        (
            "x,y\n1,2\n3,abc\n",
            ["x", "y"],
            r"d\.csv, line 3 \(data row 2\), column 'y': 'abc' is not a number",
        ),
        ("x,y\n1,2\n\n3,\n", ["x", "y"], r"line 4 \(data row 2\), column 'y': the cell is empty"),
        ("x,y\n1,nan\n", ["x", "y"], r"column 'y': 'nan' is not a finite number"),
        ("x,y\n1,2\n3\n", ["x", "y"], r"line 3 \(data row 2\): 1 cells, but the header has 2"),
        ("", ["x"], r"d\.csv: the file is empty"),
        ("\n  \n", ["x"], r"the file is empty"),
        ("x,y\n", ["x"], r"the header has no data rows"),
        ("x,y\n__import__('os'),1\n", ["x"], r"'__import__\('os'\)' is not a number"),
    ],
)
def test_bad_csv(tmp_path, text, names, message):
    path = write(tmp_path, "d.csv", text)
    with pytest.raises(InputError, match=message):
        load_data(path, names)


def test_csv_column_range_makes_a_matrix(tmp_path):
    path = write(tmp_path, "d.csv", "id,a,b,c,y\n7,1,2,3,0\n8,4,5,6,1\n")
    data = load_data(path, ["X", "y"], parse_columns(["X=a:c"]))
    assert data["X"].shape == (2, 3) and data["X"].tolist() == [[1, 2, 3], [4, 5, 6]]
    assert data["y"].tolist() == [0, 1]
    assert load_data(path, ["X"], {"X": "b:b"})["X"].shape == (2, 1)
    with pytest.raises(InputError, match="column 'a' comes before 'c' in 'c:a'"):
        load_data(path, ["X"], {"X": "c:a"})
    with pytest.raises(InputError, match="no column 'z' for data 'X'"):
        load_data(path, ["X"], {"X": "a:z"})
    bad = write(tmp_path, "bad.csv", "a,b\n1,x\n")
    with pytest.raises(InputError, match=r"line 2 \(data row 1\), column 'b': 'x' is not a number"):
        load_data(bad, ["X"], {"X": "a:b"})


def test_unused_text_columns_are_fine(tmp_path):
    path = write(tmp_path, "d.csv", "name,x\nalice,1\nbob,2\n")
    assert load_data(path, ["x"])["x"].tolist() == [1.0, 2.0]


def test_not_utf8(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"x\n\xff\xfe\n")
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        load_data(path, ["x"])


def test_file_and_format_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_data(tmp_path / "missing.csv", ["x"])
    with pytest.raises(InputError, match=r"unknown data format '\.xlsx'"):
        load_data(tmp_path / "d.xlsx", ["x"])
    with pytest.raises(InputError, match="--column maps 'q', which is not a data name"):
        load_data(write(tmp_path, "d.csv", "x\n1\n"), ["x"], {"q": "x"})
    with pytest.raises(InputError, match="expected --column NAME=COLUMN"):
        parse_columns(["y"])


def test_npz(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(4), target=np.ones(4), text=np.array(["a", "b", "c", "d"]))
    data = load_data(path, ["x", "y"], {"y": "target"})
    assert data["x"].tolist() == [0, 1, 2, 3] and data["y"].tolist() == [1, 1, 1, 1]
    with pytest.raises(InputError, match=r"no array 'y' for data 'y' \(arrays: x, target, text\)"):
        load_data(path, ["x", "y"])
    with pytest.raises(InputError, match="array 'text' holds <U1 values, not real numbers"):
        load_data(path, ["x"], {"x": "text"})


def test_npz_mismatched_lengths(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(4.0), y=np.arange(3.0))
    with pytest.raises(InputError, match=r"d\.npz: 'x' has 4 samples but 'y' has 3"):
        load_data(path, ["x", "y"])


def test_npz_refuses_pickled_objects(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match=r"d\.npz"):
        load_data(path, ["x"])


def test_npy_columns(tmp_path):
    path = tmp_path / "d.npy"
    np.save(path, np.array([[1.0, 10.0, 5.0], [2.0, 20.0, 6.0]]))
    assert load_data(path, ["x", "y"])["y"].tolist() == [10.0, 20.0]
    assert load_data(path, ["x", "y"], {"y": "2"})["y"].tolist() == [5.0, 6.0]
    with pytest.raises(InputError, match="no column 7 for data 'y'"):
        load_data(path, ["x", "y"], {"y": "7"})
    single = tmp_path / "one.npy"
    np.save(single, np.arange(3.0))
    assert load_data(single, ["x"])["x"].tolist() == [0.0, 1.0, 2.0]
    assert load_data(path, ["X"])["X"].shape == (2, 3)  # one name: the whole (matrix) array
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not numpy")
    with pytest.raises(InputError, match=r"broken\.npy: not a readable \.npy file"):
        load_data(broken, ["x"])


def test_write_json_is_atomic_and_complete(tmp_path):
    target = tmp_path / "params.json"
    write_json(target, {"params": {"b0": 1.5}})
    assert json.loads(target.read_text()) == {"params": {"b0": 1.5}}
    assert [p.name for p in tmp_path.iterdir()] == ["params.json"]
    with pytest.raises(TypeError):
        write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"params": {"b0": 1.5}}  # the old file survives
    assert [p.name for p in tmp_path.iterdir()] == ["params.json"]
    with pytest.raises(InputError, match="does not exist"):
        write_json(tmp_path / "no" / "p.json", {})
