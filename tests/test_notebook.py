"""examples/seed_walkthrough.ipynb, executed by nbclient on a real ipykernel (about 15 s): every
code cell shows Markdown or LaTeX and no error, and the seeds' numbers come out of the cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "seed_walkthrough.ipynb"

#: What a cell displays for people (beside text/plain, which every output has).
RICH = ("text/markdown", "text/latex")


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The notebook run top to bottom in a fresh kernel started in an empty folder (so the kernel
    imports the installed symdiff); its code cells by id."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    folder = tmp_path_factory.mktemp("notebook")
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    assert list(folder.iterdir()) == [], "the notebook left files in its working folder"
    return {cell.id: cell for cell in notebook.cells if cell.cell_type == "code"}


def rich_text(cell: Any) -> str:
    """Everything a cell displayed as Markdown or LaTeX, joined."""
    parts = []
    for output in cell.outputs:
        data = output.get("data", {})
        parts += [data[kind] for kind in RICH if kind in data]
    return "\n".join(parts)


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 10
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.id
    ids = [cell.id for cell in notebook.cells]
    assert ids == [f"cell-{i:02d}" for i in range(1, len(ids) + 1)]  # stable, not random


def test_every_code_cell_displays_markdown_or_latex_and_no_error(executed) -> None:
    for cell_id, cell in executed.items():
        kinds = [output.output_type for output in cell.outputs]
        assert "error" not in kinds, (cell_id, cell.outputs)
        assert not [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"], (
            cell_id
        )
        assert rich_text(cell).strip(), f"{cell_id} displayed no Markdown or LaTeX: {kinds}"


def test_limit_definition_cells(executed) -> None:
    assert "6 x^{2}" in rich_text(executed["cell-04"])
    quotients = rich_text(executed["cell-06"])
    assert "| 1e-04 | 6.00010000001 |" in quotients  # the document's getDeriv: 6.0001


def test_derivation_and_step_cells(executed) -> None:
    derivation = executed["cell-08"].outputs[-1]["data"]
    assert derivation["text/plain"] == "Derivation(d/dx sin(x**2) = 2*x*cos(x**2); 1 step)"
    assert r"2 x \cos{\left(x^{2} \right)}" in derivation["text/latex"]
    assert "let $u = x^{2}$" in derivation["text/markdown"]
    step = executed["cell-09"].outputs[-1]["data"]
    assert step["text/plain"] == "Step(chain: d/dx sin(x**2) = 2*x*cos(x**2); 2 substeps)"


def test_partial_derivative_cells(executed) -> None:
    gradient = rich_text(executed["cell-12"])
    assert r"16 x^{3} z^{3} \\ 12 x^{4} z^{2}" in gradient
    assert executed["cell-12"].outputs[-1]["data"]["text/plain"] == "[16*x**3*z**3, 12*x**4*z**2]"
    assert "x held constant" in rich_text(executed["cell-13"])
    matrices = rich_text(executed["cell-14"])
    assert r"6 x y & 3 x^{2}" in matrices and r"\sqrt{14}" in matrices


def test_xi_tables_in_both_modes_end_at_the_seed_value(executed) -> None:
    forward, reverse = rich_text(executed["cell-16"]), rich_text(executed["cell-17"])
    assert "Forward mode" in forward and "Reverse mode" in reverse
    for table in (forward, reverse):
        assert "-0.00037018372" in table  # the seed's dL/dW at X=3, y=1, W=3
        assert r"\xi_{5}" in table


def test_absolute_error_graph_gives_two_and_one(executed) -> None:
    table = rich_text(executed["cell-19"])
    assert r"\frac{\partial \mathcal{L}}{\partial w} = 2" in table
    assert r"\frac{\partial \mathcal{L}}{\partial b} = 1" in table


def test_two_layer_network_gradients(executed) -> None:
    report = rich_text(executed["cell-21"])
    assert r"\frac{\partial L}{\partial W_{1}} &= \frac{1}{n} {X}^{\top} G_{2}" in report
    assert r"G_{1} &= \operatorname{softmax}\left(Z_{2}\right) - Y" in report


def test_fit_cell_plots_and_tabulates_both_minima(executed) -> None:
    cell = executed["cell-23"]
    assert any("image/png" in output.get("data", {}) for output in cell.outputs)
    table = rich_text(cell)
    assert "| gd | 1.1309 | -1.0702 |" in table  # the local minimum
    assert "| momentum | -1.3008 | -3.5139 |" in table  # over the bump, the global one


def test_answer_check_cell(executed) -> None:
    assert "**incorrect**" in rich_text(executed["cell-25"])
