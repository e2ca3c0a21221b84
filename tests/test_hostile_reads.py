"""Every input bounded: hostile and malformed files, options and standard input, through the real
``symdiff`` command.

The cases use real files: FIFOs, ``/dev/zero``, folders, symbolic links, oversized and truncated
files, archives that declare more than they hold, text that is not UTF-8. The promise checked
(README, "Exit codes"): bad input is one line on stderr starting with ``Error:`` and exit code 2,
never a hang, a traceback, a ``MemoryError`` or an ``internal error``.

Every case runs in its own process with a timeout and its address space capped at 2 GiB
(``tests/process_support.py``): ``run_symdiff_cases`` starts one ``python`` (cwd outside the
checkout, capped through ``preexec_fn``) that imports symdiff once and forks a child per case, so
the ~100 cases cost one start; ``ENTRY_POINT`` repeats the worst of them through
``python -m symdiff`` itself, one full subprocess each.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from process_support import BoundedRun, run_many_bounded, run_symdiff_cases

MIB = 1 << 20

FIT_XY = ("fit", "(b0 + b1*x - y)**2", "--params", "b0,b1", "--data", "x,y", "--epochs", "1")
FIT_X = ("fit", "(b0*x)**2", "--params", "b0", "--data", "x", "--epochs", "1")
FIT_TENSOR = (
    "fit",
    "mean((X @ w - y)**2)",
    "--shape",
    "X=n,2",
    "--shape",
    "w=2",
    "--shape",
    "y=n",
    "--params",
    "w",
    "--data",
    "X,y",
    "--epochs",
    "1",
)
FIT_SOFTMAX = (
    "fit",
    "cross_entropy(Y, softmax(X @ W))",
    "--shape",
    "X=n,3",
    "--shape",
    "W=3,2",
    "--shape",
    "Y=n,2",
    "--params",
    "W",
    "--data",
    "X,Y",
    "--epochs",
    "1",
)
CODEGEN = ("codegen", "(b - y)**2", "--params", "b", "--data", "y", "--templates")
NOT_UTF8 = {"PYTHONIOENCODING": "utf-8"}


@dataclass(frozen=True)
class Case:
    """``symdiff ARGS`` (in the folder of files made by ``make_files``) and the error expected."""

    args: tuple[str, ...]
    message: str  # a regular expression searched in the one error line
    stdin: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)


def model(name: str) -> tuple[str, ...]:
    return ("grad", "--model", name)


# --------------------------------------------------------------------------- the hostile cases

HOSTILE: dict[str, Case] = {
    # model files (--model): what the file is, its size, its encoding, its nesting
    "model-dev-zero": Case(model("/dev/zero"), r"model file /dev/zero: it is a character device"),
    "model-fifo": Case(model("fifo.toml"), r"fifo\.toml: it is a FIFO"),
    "model-folder": Case(model("folder.toml"), r"folder\.toml: it is a folder"),
    "model-symlink-to-dev-zero": Case(model("zero.toml"), r"zero\.toml: it is a character device"),
    "model-missing": Case(model("missing.toml"), r"cannot read model file missing\.toml: no such"),
    "model-over-1-MiB": Case(
        model("big.toml"), r"big\.toml: the file is 1 MiB, more than the limit"
    ),
    "model-not-utf8": Case(model("latin1.toml"), r"latin1\.toml: not UTF-8 text"),
    "model-5000-nested-arrays": Case(model("deep_arrays.toml"), r"not valid TOML: nested too deep"),
    "model-5000-nested-tables": Case(model("deep_tables.toml"), r"not valid TOML: nested too deep"),
    "model-invalid-toml": Case(model("syntax.toml"), r"syntax\.toml is not valid TOML"),
    "model-empty": Case(model("empty.toml"), r"needs a 'loss = \"...\"' string"),
    "model-loss-not-text": Case(model("loss_number.toml"), r"needs a 'loss = \"...\"' string"),
    "model-unknown-keys": Case(
        model("unknown_keys.toml"), r"unknown key\(s\) k0, k1, k10, k100, k101 and 495 more"
    ),
    "model-params-not-a-table": Case(model("params_number.toml"), r"\[params\] must be a table"),
    "model-bad-name": Case(model("bad_name.toml"), r"'1w' is not a valid name"),
    "model-param-and-data": Case(model("both.toml"), r"w in both \[params\] and \[data\]"),
    "model-unused-param": Case(model("unused.toml"), r"'q' does not appear in the expression"),
    "model-5000-unused-params": Case(
        model("unused_5000.toml"), r"'q0' \(and 4,999 more\) does not appear in the expression"
    ),
    "codegen-model-unused-param": Case(
        ("codegen", "--model", "unused.toml"), r"parameter 'q' does not appear"
    ),
    "fit-model-unused-param": Case(
        ("fit", "--model", "unused.toml", "--epochs", "1"), r"parameter 'q' does not appear"
    ),
    # dimensions in model files: whole numbers from 1 to 10**9, or names
    "dim-toml-inf": Case(model("dim_inf.toml"), r"bad dimension inf for 'w'"),
    "dim-toml-minus-inf": Case(model("dim_minus_inf.toml"), r"bad dimension -inf for 'w'"),
    "dim-toml-nan": Case(model("dim_nan.toml"), r"bad dimension nan for 'w'"),
    "dim-toml-float": Case(model("dim_float.toml"), r"bad dimension 3\.0 for 'w'"),
    "dim-toml-bool": Case(model("dim_bool.toml"), r"bad dimension True for 'w'"),
    "dim-toml-name-inf": Case(model("dim_name_inf.toml"), r"'inf'.*not finite"),
    "dim-toml-name-nan": Case(model("dim_name_nan.toml"), r"'NaN'.*not finite"),
    "dim-toml-zero": Case(model("dim_zero.toml"), r"dimension must be positive, got 0"),
    "dim-toml-negative": Case(model("dim_negative.toml"), r"dimension must be positive, got -3"),
    "dim-toml-too-large": Case(model("dim_large.toml"), r"larger than 1,000,000,000"),
    "dim-toml-int64-max": Case(model("dim_int64.toml"), r"larger than 1,000,000,000"),
    "dim-toml-nested-list": Case(model("dim_list.toml"), r"bad dimension \[3\] for 'w'"),
    "dim-toml-inline-table": Case(model("dim_table.toml"), r"bad dimension \{'a': 1\} for 'w'"),
    "dim-toml-date": Case(model("dim_date.toml"), r"bad dimension 1979-05-27 for 'w'"),
    "dim-toml-33-axes": Case(model("dim_many.toml"), r"at most 32 axes are supported"),
    # dimensions in --shape
    "dim-shape-inf": Case(("grad", "sum(w)", "--shape", "w=inf"), r"'inf'.*not finite"),
    "dim-shape-nan": Case(("grad", "sum(w)", "--shape", "w=nan"), r"'nan'.*not finite"),
    "dim-shape-infinity": Case(
        ("grad", "sum(w)", "--shape", "w=Infinity"), r"'Infinity'.*not finite"
    ),
    "dim-shape-float": Case(("grad", "sum(w)", "--shape", "w=3.0"), r"bad dimension '3\.0'"),
    "dim-shape-exponent": Case(("grad", "sum(w)", "--shape", "w=1e3"), r"bad dimension '1e3'"),
    "dim-shape-5000-digits": Case(
        ("grad", "sum(w)", "--shape", "w=" + "9" * 5000), r"larger than 1,000,000,000"
    ),
    "dim-shape-too-large": Case(
        ("grad", "sum(w)", "--shape", "w=1000000001"), r"larger than 1,000,000,000"
    ),
    "dim-shape-negative": Case(("grad", "sum(w)", "--shape", "w=-1"), r"bad dimension '-1'"),
    # a --wrt or parameter name the expression does not use: exit 2 on every path
    "wrt-unused-grad": Case(
        ("grad", "sum(w)", "--shape", "w=3", "--shape", "q=3", "--wrt", "q"),
        r"'q' does not appear in the expression \(symbols: w\)",
    ),
    "wrt-unused-among-used": Case(
        ("grad", "sum(w)", "--shape", "w=3", "--shape", "q=3", "--wrt", "w,q"),
        r"'q' does not appear",
    ),
    "wrt-unused-jacobian": Case(
        ("jacobian", "2*w", "--shape", "w=3", "--shape", "q=3", "--wrt", "q"),
        r"'q' does not appear",
    ),
    "wrt-unused-steps": Case(
        ("steps", "sum(w)", "--shape", "w=3", "--shape", "q=3", "--wrt", "q"),
        r"'q' does not appear",
    ),
    "params-unused-codegen": Case(
        ("codegen", "sum(w)", "--shape", "w=3", "--shape", "q=3", "--params", "w,q"),
        r"parameter 'q' does not appear",
    ),
    "params-unused-fit": Case(
        ("fit", "sum(w)", "--shape", "w=3", "--shape", "q=3", "--params", "w,q"),
        r"parameter 'q' does not appear",
    ),
    "fit-parameters-too-large": Case(
        ("fit", "sum(W)", "--shape", "W=100000,100000", "--params", "W"),
        r"the parameters need 74\.5 GiB as float64, more than the limit of 1 GiB",
    ),
    # standard input ('-' as EXPR): decoded strictly, at most 1 MiB
    "stdin-not-utf8-diff": Case(
        ("diff", "-", "--wrt", "x"), r"standard input: not UTF-8 text", b"\xff\xfex", NOT_UTF8
    ),
    "stdin-not-utf8-grad": Case(("grad", "-"), r"not UTF-8 text", b"x\x80", NOT_UTF8),
    "stdin-not-utf8-steps": Case(
        ("steps", "-", "--wrt", "x"), r"not UTF-8 text", b"sin(\xe9)", NOT_UTF8
    ),
    "stdin-not-utf8-codegen": Case(
        ("codegen", "-", "--params", "b"), r"not UTF-8 text", b"b\xc3", NOT_UTF8
    ),
    "stdin-not-utf8-tensor": Case(
        ("grad", "-", "--shape", "w=3"), r"not UTF-8 text", b"sum(w)\xed\xa0\x80", NOT_UTF8
    ),
    "stdin-over-1-MiB": Case(
        ("diff", "-", "--wrt", "x"),
        r"standard input: longer than the limit of 1 MiB",
        b"x" * MIB + b"x",
    ),
    # CSV data (fit --input)
    "csv-fifo": Case((*FIT_XY, "--input", "fifo.csv"), r"fifo\.csv: it is a FIFO"),
    "csv-symlink-to-dev-zero": Case(
        (*FIT_XY, "--input", "zero.csv"), r"zero\.csv: it is a character device"
    ),
    "csv-folder": Case(
        (*FIT_XY, "--input", "folder.csv"), r"'--input': File 'folder\.csv' is a directory"
    ),
    "csv-missing": Case((*FIT_XY, "--input", "missing.csv"), r"missing\.csv: no such file"),
    "csv-file-over-limit": Case(
        (*FIT_XY, "--input", "ones.csv", "--max-input-mb", "0.0001"),
        r"ones\.csv: the file is 19\.5 KiB, more than the limit of 104 bytes; --max-input-mb",
    ),
    "csv-values-over-limit": Case(
        (*FIT_XY, "--input", "ones.csv", "--max-input-mb", "0.05"),
        r"ones\.csv: more than 3,276 data rows of 2 column\(s\), over the limit of 51\.2 KiB",
    ),
    "csv-duplicate-header": Case(
        (*FIT_XY, "--input", "duplicate.csv"),
        r"duplicate\.csv: the header names column 'x' twice \(columns 1 and 2\)",
    ),
    "csv-duplicate-mapped-column": Case(
        (*FIT_XY, "--input", "duplicate_label.csv", "--column", "y=label"),
        r"names column 'label' twice \(columns 2 and 4\), so data 'y' is ambiguous",
    ),
    "csv-duplicate-range-end": Case(
        (*FIT_TENSOR, "--input", "duplicate_range.csv", "--column", "X=a:b"),
        r"names column 'a' twice",
    ),
    "csv-not-utf8": Case((*FIT_XY, "--input", "latin1.csv"), r"latin1\.csv: not a UTF-8 text"),
    "csv-line-over-16-MiB": Case(
        (*FIT_XY, "--input", "long_line.csv"),
        r"long_line\.csv, line 2: longer than 16,777,216 characters",
    ),
    "csv-field-over-csv-limit": Case(
        (*FIT_XY, "--input", "huge_field.csv"), r"not a valid CSV file: field larger than"
    ),
    "csv-nan-cell": Case(
        (*FIT_XY, "--input", "nan.csv"), r"line 3 \(data row 2\), column 'y': 'nan' is not a finite"
    ),
    "csv-overflowing-number": Case(
        (*FIT_XY, "--input", "overflow.csv"), r"column 'x': '1e999' is not a finite number"
    ),
    "csv-text-cell": Case((*FIT_XY, "--input", "text.csv"), r"column 'x': 'abc' is not a number"),
    "csv-ragged-row": Case((*FIT_XY, "--input", "ragged.csv"), r"line 3 \(data row 2\): 3 cells"),
    "csv-header-only": Case((*FIT_XY, "--input", "header.csv"), r"the header has no data rows"),
    "csv-only-blank-lines": Case((*FIT_XY, "--input", "blank.csv"), r"the file is empty"),
    "csv-2-columns-for-a-per-sample-name": Case(
        (*FIT_XY, "--input", "linear.csv", "--column", "x=x:y"),
        r"data 'x' has shape \(5, 2\), but it is declared \(n,\) \(one value per sample\)",
    ),
    # .npy data
    "npy-fifo": Case((*FIT_X, "--input", "fifo.npy"), r"fifo\.npy: it is a FIFO"),
    "npy-symlink-to-dev-zero": Case(
        (*FIT_X, "--input", "zero.npy"), r"zero\.npy: it is a character device"
    ),
    "npy-truncated-header-10e12-by-2": Case(
        (*FIT_X, "--input", "truncated.npy"),
        r"declares shape \(1000000000000, 2\) of float64 \(14,901 GiB\), but the file holds "
        r"only 160 bytes",
    ),
    "npy-int8-over-limit-as-float64": Case(
        (*FIT_X, "--input", "int8.npy", "--max-input-mb", "1"),
        r"int8\.npy: the array of shape \(600000,\) needs 4\.58 MiB as float64, more than the "
        r"limit of 1 MiB",
    ),
    "npy-header-length-4-GB": Case(
        (*FIT_X, "--input", "huge_header.npy"), r"header declares 4,000,000,000 bytes"
    ),
    "npy-pickled-objects": Case((*FIT_X, "--input", "objects.npy"), r"holds object values"),
    "npy-structured": Case((*FIT_X, "--input", "structured.npy"), r"not real numbers"),
    "npy-complex": Case((*FIT_X, "--input", "complex.npy"), r"holds complex128 values"),
    "npy-text": Case((*FIT_X, "--input", "text.npy"), r"holds <U3 values"),
    "npy-bad-magic": Case((*FIT_X, "--input", "bad_magic.npy"), r"not a readable \.npy file"),
    "npy-garbage-header": Case(
        (*FIT_X, "--input", "garbage_header.npy"), r"not a readable \.npy file"
    ),
    "npy-negative-dimension": Case((*FIT_X, "--input", "negative.npy"), r"negative dimension"),
    "npy-format-version-3": Case(
        (*FIT_X, "--input", "version3.npy"),
        r"not a readable \.npy file \(unsupported format version \(3, 0\)\)",
    ),
    "npy-empty-file": Case((*FIT_X, "--input", "empty.npy"), r"not a readable \.npy file"),
    "npy-nan-values": Case((*FIT_X, "--input", "nan.npy"), r"contains NaN or infinite values"),
    "npy-2d-for-a-per-sample-name": Case(
        (*FIT_X, "--input", "matrix.npy"), r"data 'x' has shape \(5, 2\), but it is declared \(n,\)"
    ),
    # .npz data
    "npz-fifo": Case((*FIT_XY, "--input", "fifo.npz"), r"fifo\.npz: it is a FIFO"),
    "npz-2.4-MB-declaring-2.5-GB": Case(
        (*FIT_XY, "--input", "bomb.npz"),
        r"bomb\.npz: array 'x' of shape \(312500000,\) needs 2\.33 GiB as float64, more than "
        r"the limit of 1 GiB; --max-input-mb raises the limit",
    ),
    "npz-truncated-member": Case(
        (*FIT_XY, "--input", "truncated_member.npz"),
        r"the header of array 'x' declares shape \(1000,\) of float64 \(7\.81 KiB\), but the "
        r"member holds only 10 bytes",
    ),
    "npz-not-a-zip": Case((*FIT_XY, "--input", "not_zip.npz"), r"not a readable \.npz file"),
    "npz-10001-members": Case(
        (*FIT_XY, "--input", "members.npz"), r"lists 10,001 members, more than the limit of 10,000"
    ),
    "npz-encrypted-member": Case((*FIT_XY, "--input", "encrypted.npz"), r"array 'x' is encrypted"),
    "npz-member-not-an-array": Case(
        (*FIT_XY, "--input", "raw_member.npz"), r"array 'x' is not a readable \.npy array"
    ),
    "npz-corrupt-header": Case(
        (*FIT_XY, "--input", "corrupt.npz"), r"array 'x' is not a readable \.npy array"
    ),
    "npz-pickled-objects": Case((*FIT_XY, "--input", "objects.npz"), r"holds object values"),
    "npz-2d-for-a-per-sample-name": Case(
        (*FIT_XY, "--input", "matrix.npz"),
        r"data 'x' has shape \(5, 2\), but it is declared \(n,\)",
    ),
    "npz-arrays-together-over-limit": Case(
        (*FIT_XY, "--input", "two_halves.npz", "--max-input-mb", "1"),
        r"array 'y' of shape \(80000,\) needs 625 KiB as float64 \(after 625 KiB of arrays before",
    ),
    "npz-empty-archive": Case((*FIT_XY, "--input", "empty.npz"), r"the archive is empty"),
    "npz-different-lengths": Case(
        (*FIT_XY, "--input", "lengths.npz"), r"'x' has 5 samples but 'y' has 4"
    ),
    "npz-declared-columns-differ": Case(
        (*FIT_TENSOR, "--input", "wide.npz"), r"data 'X' has shape \(5, 3\), but it is declared"
    ),
    "npz-rows-differ": Case(
        (*FIT_TENSOR, "--input", "rows.npz"), r"'X' has 5 samples but 'y' has 4"
    ),
    "npz-dimension-d-differs": Case(
        (
            "fit",
            "c*sum(X * Z)",
            "--shape",
            "X=n,d",
            "--shape",
            "Z=n,d",
            "--params",
            "c",
            "--data",
            "X,Z",
            "--input",
            "columns.npz",
        ),
        r"dimension d is 2 in 'X' but 3 in 'Z'",
    ),
    "npz-targets-not-probabilities": Case(
        (*FIT_SOFTMAX, "--input", "targets.npz"), r"targets\.npz: Y: cross_entropy targets"
    ),
    # --templates
    "template-fifo": Case((*CODEGEN, "tpl_fifo"), r"template .*module\.py\.jinja: it is a FIFO"),
    "template-dev-zero": Case(
        (*CODEGEN, "tpl_zero"), r"module\.py\.jinja: it is a character device"
    ),
    "template-folder": Case((*CODEGEN, "tpl_folder"), r"module\.py\.jinja: it is a folder"),
    "template-over-1-MiB": Case((*CODEGEN, "tpl_big"), r"the file is 1 MiB, more than the limit"),
    "template-not-utf8": Case((*CODEGEN, "tpl_latin1"), r"module\.py\.jinja: not UTF-8 text"),
    "template-helper-not-utf8": Case(
        (*CODEGEN, "tpl_helper"), r"helpers/_read_samples\.py\.jinja: not UTF-8 text"
    ),
    "template-tensor-helper-not-utf8": Case(
        ("codegen", "sum(w)", "--shape", "w=3", "--params", "w", "--templates", "tpl_helper2"),
        r"helpers/_read_data\.py\.jinja: not UTF-8 text",
    ),
    "template-folder-missing": Case((*CODEGEN, "tpl_missing"), r"--templates: .* not a directory"),
    # gradcheck: parameters are counted before anything is allocated or labelled
    "gradcheck-100000-by-100000": Case(
        ("gradcheck", "modules/huge_params.py"),
        r"the module has 10,000,000,000 parameters, more than the limit of 100,000",
    ),
    "gradcheck-float-shape": Case(("gradcheck", "modules/float_shape.py"), r"PARAMS must be"),
    "gradcheck-negative-shape": Case(("gradcheck", "modules/negative_shape.py"), r"PARAMS must be"),
    "gradcheck-bool-shape": Case(("gradcheck", "modules/bool_shape.py"), r"PARAMS must be"),
    "gradcheck-params-not-pairs": Case(("gradcheck", "modules/not_pairs.py"), r"PARAMS must be"),
    "gradcheck-params-a-number": Case(("gradcheck", "modules/params_number.py"), r"PARAMS must be"),
}

#: Inputs near the hostile ones that must still work (exit 0).
VALID: dict[str, Case] = {
    "model-file": Case(model("ok.toml"), ""),
    "stdin-utf8": Case(("diff", "-", "--wrt", "x"), "", b"x**2\n", NOT_UTF8),
    "csv-bom-quotes-blank-lines-text-columns": Case((*FIT_XY, "--input", "friendly.csv"), ""),
    "csv-duplicate-column-not-used": Case((*FIT_XY, "--input", "duplicate_unused.csv"), ""),
    "csv-limit-raised": Case((*FIT_XY, "--input", "ones.csv", "--max-input-mb", "1"), ""),
    "npy-fortran-order": Case((*FIT_X, "--input", "fortran.npy", "--column", "x=1"), ""),
    "npy-big-endian": Case((*FIT_X, "--input", "big_endian.npy"), ""),
    "npy-int8-limit-raised": Case((*FIT_X, "--input", "int8.npy", "--max-input-mb", "5"), ""),
    "npz-compressed": Case((*FIT_XY, "--input", "compressed.npz"), ""),
    "npz-tensor": Case((*FIT_TENSOR, "--input", "tensor.npz"), ""),
    "template-partial-override": Case((*CODEGEN, "tpl_empty"), ""),
}

#: fit --format json after 20,000 steps: the history, thinned and in full.
HISTORY = ("fit", "(b0*x - y)**2", "--params", "b0", "--data", "x,y", "--input", "linear.csv")
HISTORY_RUNS: dict[str, tuple[str, ...]] = {
    "history-thinned": (*HISTORY, "--lr", "0.001", "--epochs", "20000", "--format", "json"),
    "history-full": (
        *HISTORY,
        "--lr",
        "0.001",
        "--epochs",
        "20000",
        "--format",
        "json",
        "--full-history",
    ),
}


# --------------------------------------------------------------------------- the files


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def npy_header(shape: object, descr: str = "<f8", version: tuple[int, int] = (1, 0)) -> bytes:
    """An .npy header as NumPy writes it, for any declared shape."""
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buffer, header)
    else:
        np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()


def write_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> None:
    """A zip archive written by hand from already deflated members
    ``(name, deflated data, crc32, uncompressed size, flag bits)``."""
    with path.open("wb") as out:
        central = []
        for name, data, crc, size, flags in members:
            offset = out.tell()
            encoded = name.encode()
            out.write(
                struct.pack(
                    "<4s5H3L2H",
                    b"PK\x03\x04",
                    20,
                    flags,
                    8,
                    0,
                    0x21,
                    crc,
                    len(data),
                    size,
                    len(encoded),
                    0,
                )
            )
            out.write(encoded + data)
            central.append(
                struct.pack(
                    "<4s6H3L5H2L",
                    b"PK\x01\x02",
                    20,
                    20,
                    flags,
                    8,
                    0,
                    0x21,
                    crc,
                    len(data),
                    size,
                    len(encoded),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
                + encoded
            )
        directory = b"".join(central)
        start = out.tell()
        out.write(directory)
        out.write(
            struct.pack(
                "<4s4H2LH",
                b"PK\x05\x06",
                0,
                0,
                len(members),
                len(members),
                len(directory),
                start,
                0,
            )
        )


def write_bomb(path: Path, count: int) -> None:
    """An .npz whose member 'x' declares ``count`` float64 zeros and holds them, deflated: about
    1/1000 of their size. Written from one repeated deflate block (a full flush resets the
    compressor, so each block of zeros compresses to the same bytes)."""
    header = npy_header((count,))
    chunk = bytes(16 * MIB)
    blocks, rest = divmod(count * 8, len(chunk))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert again == block  # the repeated block is exactly what deflate would write
    tail = compressor.compress(chunk[:rest]) + compressor.flush()
    crc = zlib.crc32(header)
    for _ in range(blocks):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(chunk[:rest], crc)
    data = head + block * blocks + tail
    sample = zlib.decompressobj(-15).decompress(data[: len(head) + 2 * len(block)])
    assert sample == header + bytes(len(sample) - len(header))
    write_zip(path, [("x.npy", data, crc, len(header) + count * 8, 0), *_small_member("y")])


def _small_member(name: str) -> list[tuple[str, bytes, int, int, int]]:
    raw = io.BytesIO()
    np.save(raw, np.ones(3))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(raw.getvalue()) + compressor.flush()
    return [(f"{name}.npy", data, zlib.crc32(raw.getvalue()), len(raw.getvalue()), 0)]


def module_source(params: str) -> str:
    return (
        "import numpy as np\n"
        f"PARAMS = {params}\n"
        "DATA = ()\n"
        "def loss(params, *data):\n    return float(np.sum(params ** 2))\n"
        "def grad(params, *data):\n    return 2 * params\n"
    )


def toml(loss: str, params: str = "", data: str = "") -> str:
    text = f'loss = "{loss}"\n'
    if params:
        text += f"[params]\n{params}\n"
    if data:
        text += f"[data]\n{data}\n"
    return text


def make_files(folder: Path) -> None:
    """Every file the cases name, in the cases' order."""
    for name in ("fifo.toml", "fifo.csv", "fifo.npy", "fifo.npz"):
        os.mkfifo(folder / name)
    for name in ("zero.toml", "zero.csv", "zero.npy"):
        (folder / name).symlink_to("/dev/zero")
    for name in ("folder.toml", "folder.csv"):
        (folder / name).mkdir()

    # model files
    write(folder, "big.toml", toml("sum(w)", "w = [3]") + "#" * MIB)
    write(folder, "latin1.toml", toml("sum(w)", "w = [3]").encode() + b"# caf\xe9\n")
    write(folder, "deep_arrays.toml", 'loss = "sum(w)"\nx = ' + "[" * 5000 + "]" * 5000 + "\n")
    write(folder, "deep_tables.toml", 'loss = "sum(w)"\nx = ' + "{a=" * 5000 + "1" + "}" * 5000)
    write(folder, "syntax.toml", "loss = \n")
    write(folder, "empty.toml", "")
    write(folder, "loss_number.toml", "loss = 3\n")
    write(folder, "unknown_keys.toml", toml("sum(w)") + "".join(f"k{i} = 1\n" for i in range(500)))
    write(folder, "params_number.toml", 'loss = "sum(w)"\nparams = 3\n')
    write(folder, "bad_name.toml", toml("sum(w)", '"1w" = [3]'))
    write(folder, "both.toml", toml("sum(w)", "w = [3]", "w = [3]"))
    write(folder, "unused.toml", toml("sum(w)", "w = [3]\nq = [3]"))
    write(
        folder,
        "unused_5000.toml",
        toml("sum(w)", "w = [3]\n" + "".join(f"q{i} = [3]\n" for i in range(5000))),
    )
    dims = {
        "dim_inf": "[inf]",
        "dim_minus_inf": "[-inf]",
        "dim_nan": "[nan]",
        "dim_float": "[3.0]",
        "dim_bool": "[true]",
        "dim_name_inf": '["inf"]',
        "dim_name_nan": '["NaN"]',
        "dim_zero": "[0]",
        "dim_negative": "[-3]",
        "dim_large": "[10000000000]",
        "dim_int64": "[9223372036854775807]",
        "dim_list": "[[3]]",
        "dim_table": "{a = 1}",
        "dim_date": "[1979-05-27]",
        "dim_many": "[" + ", ".join(["1"] * 33) + "]",
    }
    for name, shape in dims.items():
        write(folder, f"{name}.toml", toml("sum(w)", f"w = {shape}"))
    write(folder, "ok.toml", toml("sum(w * x)", "w = [3]", "x = [3]"))

    # CSV
    linear = "x,y\n1,3\n2,5\n3,7\n4,9\n5,11\n"
    write(folder, "linear.csv", linear)
    write(folder, "ones.csv", "x,y\n" + "1,1\n" * 5000)
    write(folder, "duplicate.csv", "x,x,y\n1,2,3\n")
    write(folder, "duplicate_label.csv", "x,label,note,label\n1,2,a,3\n")
    write(folder, "duplicate_range.csv", "a,a,b,y\n1,2,3,4\n")
    write(folder, "duplicate_unused.csv", "note,x,y,note\na,1,2,b\nc,2,4,d\n")
    write(folder, "latin1.csv", b"x,y\n1,2\n3,4 caf\xe9\n")
    write(folder, "long_line.csv", "x,y\n" + "1" * (16 * MIB + 10) + ",2\n")
    write(folder, "huge_field.csv", 'x,y\n"' + "1" * 200_000 + '",2\n')
    write(folder, "nan.csv", "x,y\n1,2\n3,nan\n")
    write(folder, "overflow.csv", "x,y\n1e999,2\n")
    write(folder, "text.csv", "x,y\nabc,2\n")
    write(folder, "ragged.csv", "x,y\n1,2\n3,4,5\n")
    write(folder, "header.csv", "x,y\n")
    write(folder, "blank.csv", "\n  \n\n")
    write(folder, "friendly.csv", '\ufeffnote,"x",y\nfirst,1,3\n\n"se,cond",2,5\n  \nthird,3,7\n')

    # .npy
    write(folder, "truncated.npy", npy_header((10**12, 2)) + bytes(160))
    np.save(folder / "int8.npy", np.ones(600_000, dtype=np.int8))
    write(folder, "huge_header.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 4_000_000_000) + b"{")
    np.save(folder / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(folder / "structured.npy", np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]))
    np.save(folder / "complex.npy", np.ones(3, dtype=complex))
    np.save(folder / "text.npy", np.array(["abc", "def"]))
    write(folder, "bad_magic.npy", b"not numpy at all")
    write(folder, "garbage_header.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", 6) + b"{oops}")
    write(folder, "negative.npy", npy_header((-5,)) + bytes(64))
    write(folder, "version3.npy", b"\x93NUMPY\x03\x00" + struct.pack("<I", 6) + b"{}    ")
    write(folder, "empty.npy", b"")
    np.save(folder / "nan.npy", np.array([1.0, np.nan, 3.0]))
    np.save(folder / "matrix.npy", np.ones((5, 2)))
    np.save(folder / "fortran.npy", np.asfortranarray(np.arange(10.0).reshape(5, 2)))
    np.save(folder / "big_endian.npy", np.arange(1.0, 6.0).astype(">f8"))

    # .npz
    write_bomb(folder / "bomb.npz", 2_500_000_000 // 8)
    with zipfile.ZipFile(folder / "truncated_member.npz", "w") as archive:
        archive.writestr("x.npy", npy_header((1000,)) + bytes(10))
        archive.writestr("y.npy", npy_header((1000,)) + bytes(8000))
    write(folder, "not_zip.npz", b"PK\x03\x04 this is not a zip archive")
    empty = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    write_zip(folder / "members.npz", [(f"a{i}.npy", empty, 0, 0, 0) for i in range(10_001)])
    write_zip(folder / "encrypted.npz", [("x.npy", empty, 0, 0, 1), *_small_member("y")])
    with zipfile.ZipFile(folder / "raw_member.npz", "w") as archive:
        archive.writestr("x", b"just some bytes, not an array")
        archive.writestr("y.npy", npy_header((3,)) + bytes(24))
    raw = io.BytesIO()
    np.save(raw, np.ones(3))
    with zipfile.ZipFile(folder / "corrupt.npz", "w") as archive:
        archive.writestr("x.npy", raw.getvalue().replace(b"'descr'", b"'dexcr'"))
        archive.writestr("y.npy", raw.getvalue())
    np.savez(folder / "objects.npz", x=np.array([{"a": 1}], dtype=object), y=np.ones(1))
    np.savez(folder / "matrix.npz", x=np.ones((5, 2)), y=np.ones(5))
    np.savez_compressed(folder / "two_halves.npz", x=np.ones(80_000), y=np.ones(80_000))
    with zipfile.ZipFile(folder / "empty.npz", "w"):
        pass
    np.savez(folder / "lengths.npz", x=np.ones(5), y=np.ones(4))
    np.savez(folder / "wide.npz", X=np.ones((5, 3)), y=np.ones(5))
    np.savez(folder / "rows.npz", X=np.ones((5, 2)), y=np.ones(4))
    np.savez(folder / "columns.npz", X=np.ones((5, 2)), Z=np.ones((5, 3)))
    np.savez(folder / "targets.npz", X=np.ones((5, 3)), Y=np.ones((5, 2)))
    np.savez_compressed(folder / "compressed.npz", x=np.arange(5.0), y=2 * np.arange(5.0) + 1)
    np.savez(folder / "tensor.npz", X=np.ones((5, 2)), y=np.ones(5))

    # --templates folders
    os.mkfifo(write(folder, "tpl_fifo/keep", "").parent / "module.py.jinja")
    (write(folder, "tpl_zero/keep", "").parent / "module.py.jinja").symlink_to("/dev/zero")
    (write(folder, "tpl_folder/keep", "").parent / "module.py.jinja").mkdir()
    write(folder, "tpl_big/module.py.jinja", "{# " + "x" * MIB + " #}")
    write(folder, "tpl_latin1/module.py.jinja", b"# caf\xe9 {{ doc }}\n")
    write(folder, "tpl_helper/helpers/_read_samples.py.jinja", b"\xff\xfe")
    write(folder, "tpl_helper2/helpers/_read_data.py.jinja", b"\xff\xfe")
    write(folder, "tpl_empty/helpers/unused.py.jinja", "# not used by any module\n")

    # generated-module look-alikes for gradcheck
    write(folder, "modules/huge_params.py", module_source("(('W', (100000, 100000)),)"))
    write(folder, "modules/float_shape.py", module_source("(('W', (3.5,)),)"))
    write(folder, "modules/negative_shape.py", module_source("(('W', (-3,)),)"))
    write(folder, "modules/bool_shape.py", module_source("(('W', (True,)),)"))
    write(folder, "modules/not_pairs.py", module_source("(('W', (3,), 'extra'),)"))
    write(folder, "modules/params_number.py", module_source("3"))


# --------------------------------------------------------------------------- the runs


#: The worst cases again, each through ``python -m symdiff`` in a full subprocess of its own.
ENTRY_POINT = [
    "model-dev-zero",
    "model-fifo",
    "model-5000-nested-arrays",
    "dim-toml-inf",
    "wrt-unused-grad",
    "stdin-not-utf8-diff",
    "csv-duplicate-header",
    "npy-truncated-header-10e12-by-2",
    "npz-2.4-MB-declaring-2.5-GB",
    "template-fifo",
    "gradcheck-100000-by-100000",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = tmp_path_factory.mktemp("hostile")
    make_files(made)
    return made


@pytest.fixture(scope="module")
def outcomes(folder: Path) -> dict[str, subprocess.CompletedProcess]:
    cases = {key: (c.args, c.stdin) for key, c in {**HOSTILE, **VALID}.items()}
    cases.update({key: (args, None) for key, args in HISTORY_RUNS.items()})
    return run_symdiff_cases(cases, cwd=folder, timeout=60)


@pytest.fixture(scope="module")
def entry_point_outcomes(folder: Path) -> dict[str, subprocess.CompletedProcess]:
    def starter(case: Case):
        return lambda: BoundedRun(*case.args, stdin=case.stdin, env=case.env, cwd=folder)

    return run_many_bounded({key: starter(HOSTILE[key]) for key in ENTRY_POINT}, timeout=60)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a refused input prints on stderr (asserting there is exactly one)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def test_there_are_at_least_70_hostile_cases():
    assert len(HOSTILE) >= 70


def check_refused(result: subprocess.CompletedProcess, key: str) -> None:
    line = error_line(result)
    assert result.returncode == 2, line
    assert line.startswith("Error: "), line
    assert "internal error" not in line and "Traceback" not in result.stderr
    assert re.search(HOSTILE[key].message, line), line
    assert len(line) < 600, line  # names the problem, never echoes a huge input


@pytest.mark.parametrize("key", list(HOSTILE))
def test_hostile_input_is_one_line_and_exit_2(outcomes, key):
    check_refused(outcomes[key], key)


@pytest.mark.parametrize("key", ENTRY_POINT)
def test_hostile_input_through_python_m_symdiff(entry_point_outcomes, key):
    check_refused(entry_point_outcomes[key], key)


@pytest.mark.parametrize("key", list(VALID))
def test_valid_input_next_to_the_hostile_ones_still_works(outcomes, key):
    result = outcomes[key]
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == "" or result.stderr.startswith("wrote")


def test_fit_json_history_is_thinned_to_1000_entries_plus_the_last(outcomes):
    result = outcomes["history-thinned"]
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    history = data["history"]
    assert data["steps"] == 20_000
    assert set(history) == {"loss", "epoch_loss", "epoch_end", "grad_norm", "lr", "step", "epoch"}
    steps = history["step"]
    assert steps[0] == 0 and steps[-1] == 19_999 and len(steps) == 1001
    assert len(set(np.diff(steps[:-1]))) == 1  # evenly spaced, then the last
    for key in ("loss", "grad_norm", "lr"):
        assert len(history[key]) == len(steps)
    assert len(history["epoch"]) == len(history["epoch_loss"]) == len(history["epoch_end"]) == 1001
    assert history["epoch_end"][-1] == 19_999
    assert len(result.stdout) < 200_000


def test_fit_full_history_keeps_every_step(outcomes):
    thinned = json.loads(outcomes["history-thinned"].stdout)["history"]
    result = outcomes["history-full"]
    assert result.returncode == 0, result.stderr[-2000:]
    history = json.loads(result.stdout)["history"]
    assert history["step"] == list(range(20_000)) and len(history["loss"]) == 20_000
    assert [history["loss"][t] for t in thinned["step"]] == thinned["loss"]
