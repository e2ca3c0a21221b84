"""``symdiff fit``: compile a loss, read data, train, then print, save and plot the result."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from ..errors import InputError, SymdiffError
from ..inputs import DATA_LIMIT, MIB
from ..interrupts import StopAtStep, exit_code, signal_name
from ..outputs import STDOUT, check_distinct, check_output, write_output
from ..train.checkpoint import DEFAULT_EVERY
from ..train.data import json_bytes, load_data, parse_columns, parse_float
from ..train.optimize import OPTIMIZERS, SECOND_ORDER, Optimizer, make_optimizer, parse_spec
from . import cli
from . import scale as scale_cli
from . import tensor as tensor_cli
from .codegen import REDUCTIONS
from .common import EXPRESSION_FIRST, NameChoice, format_option, read_expression, split_names

if TYPE_CHECKING:  # SymPy and the training loop load when the command runs, not for its --help
    from ..train.loop import BatchSize, Callback, FitResult, GeneratedModule, StepInfo

#: the progress bar appears on a terminal for runs of at least this many steps
PROGRESS_MIN_STEPS = 1000
#: ``--format json`` keeps at most this many evenly spaced entries of each history list (plus
#: the last); ``--full-history`` keeps them all
HISTORY_POINTS = 1000


#: A loss may start with a minus sign ("-y*log(p)"); a mistyped --option is still an error.
@cli.command(name="fit", **EXPRESSION_FIRST)
@click.argument("loss", required=False)
@click.option(
    "--params", "params", multiple=True, help="Parameters to train, e.g. b0,b1 (required)."
)
@click.option("--data", "data", multiple=True, help="Data names (columns of --input), e.g. x,y.")
@click.option(
    "--input",
    "input_path",
    type=click.Path(dir_okay=False),
    help="Data file: .csv (with a header), .npz or .npy.",
)
@click.option(
    "--column",
    multiple=True,
    help="Map a data name to a column/key: y=label; X=x1:x5 for a matrix of CSV columns.",
)
@click.option(
    "--max-input-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=DATA_LIMIT // MIB,
    show_default=True,
    help="Largest --input file, and largest float64 data read from it, in MiB.",
)
@click.option(
    "--full-history",
    is_flag=True,
    help=f"JSON: every step's history (default: at most {HISTORY_POINTS} evenly spaced entries).",
)
@click.option(
    "--reduce",
    type=NameChoice(REDUCTIONS, "reduction"),
    default="mean",
    show_default=True,
    help="Fold the per-sample losses.",
)
@click.option(
    "--optimizer",
    default="gd",
    show_default=True,
    help=f"One of {', '.join([*OPTIMIZERS, *SECOND_ORDER])}; settings after a colon: "
    "momentum:mu=0.95.",
)
@click.option("--lr", type=float, default=0.01, show_default=True, help="Learning rate.")
@click.option(
    "--schedule",
    default="constant",
    show_default=True,
    help="constant | step:drop=0.5,every=100 | exponential:gamma=0.99 | inverse:decay=0.01.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Passes over the data.",
)
@click.option(
    "--batch-size",
    default="auto",
    show_default=True,
    help="full, 1 (SGD), k (mini-batches), or auto (the optimizer's default).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the mini-batch shuffling."
)
@click.option("--init", default=None, help="Starting values, e.g. b0=0,b1=0.5 (others start at 0).")
@click.option(
    "--tol",
    type=float,
    default=None,
    help="Stop when the epoch loss changes by at most tol*max(1,|loss|).",
)
@click.option(
    "--gtol", type=float, default=None, help="Stop when the gradient norm is at most gtol."
)
@click.option(
    "--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many updates."
)
@click.option("--clip-norm", type=float, default=None, help="Clip the gradient to this 2-norm.")
@click.option(
    "--save",
    "save_path",
    type=click.Path(dir_okay=False),
    help="Write the parameters (and loss) as JSON, atomically ('-': standard output).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Draw the loss curve (and the path, for 1-2 parameters) to a .png/.svg/.pdf.",
)
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(dir_okay=False),
    help="Write the state of training here (atomically) every --checkpoint-every steps and "
    "when interrupted, to go on with --resume.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=None,
    help=f"Steps between checkpoints (default {DEFAULT_EVERY}).",
)
@click.option(
    "--resume",
    "resume_path",
    type=click.Path(dir_okay=False),
    help="Go on from a --checkpoint file (made with the same settings): the result is the one "
    "the run would have reached without a break.",
)
@click.option(
    "--compare",
    multiple=True,
    help="Also train with this optimizer spec (repeatable; lr=... inside overrides --lr) "
    "and draw every run on the --plot.",
)
@tensor_cli.tensor_options
@scale_cli.scale_options
@format_option("text", "json")
def fit_command(
    loss: str | None,
    params: tuple[str, ...],
    data: tuple[str, ...],
    input_path: str | None,
    column: tuple[str, ...],
    max_input_mb: float,
    full_history: bool,
    reduce: str,
    optimizer: str,
    lr: float,
    schedule: str,
    epochs: int,
    batch_size: str,
    seed: int,
    init: str | None,
    tol: float | None,
    gtol: float | None,
    max_steps: int | None,
    clip_norm: float | None,
    save_path: str | None,
    plot_path: str | None,
    checkpoint_path: str | None,
    checkpoint_every: int | None,
    resume_path: str | None,
    compare: tuple[str, ...],
    fmt: str,
    shape: tuple[str, ...] = (),
    model_path: str | None = None,
    out_of_core: bool = False,
    block_rows: int = scale_cli.DEFAULT_BLOCK_ROWS,
    engine: str = "numpy",
    scheduler: str | None = None,
    workers: int | None = None,
) -> None:
    """Train the parameters of the per-sample LOSS on data by gradient descent.

    \b
    Examples:
      symdiff fit "(b0 + b1*x - y)**2" --params b0,b1 --data x,y --input data.csv --lr 0.1
      symdiff fit "(b0 + b1*x - y)**2" --params b0,b1 --data x,y --input data.csv \\
          --optimizer momentum:mu=0.9 --batch-size 16 --epochs 50 --save params.json --plot loss.png
      symdiff fit "(b0 + b1*x - y)**2" --params b0,b1 --data x,y --input data.csv \\
          --compare adam:lr=0.1 --compare nesterov --plot compare.png
      symdiff fit --model mlp.toml --input digits.npz --optimizer adam --batch-size 32 \\
          --checkpoint run.npz

    Ctrl-C (or SIGTERM) stops training after the current step: the parameters reached are
    printed and saved (and checkpointed), and the exit code is 130 (143); a second Ctrl-C quits
    at once. The same command with --resume run.npz goes on from the checkpoint.
    """
    from ..codegen.scalar import compile as compile_loss
    from ..frontend.parse import parse
    from ..text import formula
    from ..train.loop import fit, planned_steps
    from ..train.plot import draws_path

    param_names = split_names(params) or []
    data_names = split_names(data) or []
    tensor_model = None
    optimizers = {spec: _optimizer(spec, lr, schedule, clip_norm) for spec in (optimizer, *compare)}
    # newton-cg needs H v: the module is generated with hvp (tensor) or hessian (per-sample)
    second_order = any(getattr(chosen, "uses_hessian", False) for chosen in optimizers.values())
    if tensor_cli.wants_tensor(shape, model_path):
        tensor_model, param_names, data_names = tensor_cli.compile_for_fit(
            loss, shape, model_path, param_names, data_names, second_order
        )
    elif loss is None or not param_names:
        raise click.UsageError(
            "Missing argument 'LOSS'." if loss is None else "Missing option '--params'."
        )
    if data_names and input_path is None:
        raise InputError("--data names need an --input file to read them from")
    if input_path and not data_names:
        raise InputError("--input needs --data names saying which columns to use")
    if tensor_model is not None:
        model = tensor_model
        # a tensor loss as written (symdiff's scalar printer has no @)
        if loss is not None and loss != "-":
            loss_text = loss.strip()
        else:
            loss_text = f"of {model_path}" if model_path else "from standard input"
    elif loss is not None:
        loss_text = read_expression(loss)
        model = compile_loss(
            loss_text, params=param_names, data=data_names, reduce=reduce, hessian=second_order
        )
        loss_text = formula(parse(loss_text))
    else:  # ruled out above; kept so that a missing LOSS can never reach read_expression
        raise click.UsageError("Missing argument 'LOSS'.")
    if scale_cli.wants_blocks(out_of_core, engine, scheduler, workers):
        arrays = scale_cli.read_blocks(model, input_path, data_names, column, block_rows, engine,
                                       scheduler, plot_path, workers)  # fmt: skip
    else:
        arrays = _read_data(model, input_path, data_names, column, max_input_mb)
    _check_outputs(save_path, plot_path, checkpoint_path, checkpoint_every, resume_path,
                   compare, {"--input": input_path, "--model": model_path})  # fmt: skip
    start = _initial_values(init, param_names)
    if tensor_model is not None and init is None:
        start = tensor_cli.initial_params(tensor_model, seed)
    size = _batch_size(batch_size)
    total = sum(
        planned_steps(model, arrays, chosen, size, epochs, max_steps)
        for chosen in optimizers.values()
    )
    runs: dict[str, FitResult] = {}
    # the first SIGINT/SIGTERM stops training at the next step boundary; a second one (also
    # while the results are written) ends the command at once, leaving no partial file
    with StopAtStep() as interrupt:
        with _progress(total) as progress:
            for spec, chosen in optimizers.items():
                runs[spec] = fit(
                    model,
                    arrays,
                    chosen,
                    init=start,
                    epochs=epochs,
                    batch_size=size,
                    seed=seed,
                    tol=tol,
                    gtol=gtol,
                    max_steps=max_steps,
                    callbacks=[progress(), lambda info: interrupt.reason(info.step)],
                    record_path=plot_path is not None and draws_path(model),
                    checkpoint=checkpoint_path,
                    checkpoint_every=checkpoint_every,
                    resume=resume_path,
                )
                if interrupt.signum is not None:
                    break  # the --compare runs not started yet are left out
        _finish(runs, optimizers, fmt, save_path, plot_path, checkpoint_path, model, arrays,
                interrupt, None if full_history else HISTORY_POINTS, loss_text)  # fmt: skip


def _check_outputs(
    save_path: str | None,
    plot_path: str | None,
    checkpoint_path: str | None,
    checkpoint_every: int | None,
    resume_path: str | None,
    compare: tuple[str, ...],
    inputs: dict[str, str | None],
) -> None:
    """Refuse, before any training, an output that cannot or must not be written: not a regular
    file or new name, one of the inputs, or two outputs naming one file."""
    from ..train.plot import check_plot_path

    if compare and (checkpoint_path or resume_path):
        raise InputError("--checkpoint and --resume follow one run: they cannot go with --compare")
    if checkpoint_every is not None and checkpoint_path is None:
        raise InputError("--checkpoint-every needs --checkpoint FILE")
    check_distinct({"--save": save_path, "--plot": plot_path, "--checkpoint": checkpoint_path})
    read = {**inputs, "--resume": resume_path}
    if save_path is not None:
        check_output(save_path, read, option="--save", dash="stdout")
    if plot_path is not None:
        check_output(plot_path, read, option="--plot", dash="refuse")
        check_plot_path(plot_path)
    if checkpoint_path is not None:  # it may be the --resume file: that is read first
        check_output(checkpoint_path, inputs, option="--checkpoint", dash="refuse")


def _finish(
    runs: dict[str, FitResult],
    optimizers: dict[str, Optimizer],
    fmt: str,
    save_path: str | None,
    plot_path: str | None,
    checkpoint_path: str | None,
    model: GeneratedModule,
    arrays: dict[str, np.ndarray],
    interrupt: StopAtStep,
    history: int | None,
    loss_text: str,
) -> None:
    """Print, save and plot the results (the report first: a file that cannot be written loses
    nothing), saying (in text format) which files were written; then the error of a diverged
    or interrupted run."""
    from ..train.plot import plot_training

    result = next(iter(runs.values()))
    # with --save -, standard output carries exactly the saved JSON and the report goes to stderr
    report = save_path == STDOUT
    click.echo(_render(runs, optimizers, fmt, history), err=report)
    if save_path is not None:
        write_output(save_path, json_bytes(_saved(result)), option="--save", dash="stdout")
        if fmt == "text" and save_path != STDOUT:
            click.echo(f"wrote the parameters to {save_path}", err=report)
    if plot_path is not None:
        labels = {spec: _label(spec, optimizers[spec]) for spec in runs}
        if len(set(labels.values())) < len(labels):  # e.g. gd and gd:lr=0.01 with --lr 0.01
            labels = {spec: spec for spec in runs}
        title = f"loss {loss_text}" + (f"\n{labels[next(iter(runs))]}" if len(runs) == 1 else "")
        plot_training({labels[spec]: run for spec, run in runs.items()}, plot_path,
                      model=model, data=list(arrays.values()), title=title)  # fmt: skip
        if fmt == "text":
            click.echo(f"wrote the plot to {plot_path}", err=report)
    if interrupt.signum is not None:
        raise _interrupted(interrupt, runs, save_path, checkpoint_path)
    if result.failed:  # the data could not be computed on: the message says what was kept
        raise SymdiffError(result.message)
    if result.diverged:
        # the report (or the JSON) holds the whole message; the error line says what to do
        advice = result.message.rsplit("; ", 1)[-1]
        raise SymdiffError(f"training diverged after {result.steps} steps; {advice}")


def _read_data(
    model: Any, path: str | None, names: list[str], column: tuple[str, ...], max_mb: float
) -> dict[str, np.ndarray]:
    """The --input arrays, bounded by --max-input-mb, checked against the model's declared data
    shapes and by the model's own data checks (e.g. cross-entropy targets are probabilities)."""
    if not path:
        return {}
    shapes = dict(getattr(model, "DATA_SHAPES", ()))
    arrays = load_data(path, names, parse_columns(column), limit=int(max_mb * MIB), shapes=shapes)
    if all(name in arrays for name in model.DATA):
        size = sum(math.prod(shape) for _, shape in model.PARAMS)
        try:
            with np.errstate(all="ignore"):
                model.loss(np.zeros(size), *(arrays[name] for name in model.DATA))
        except ValueError as exc:
            raise InputError(f"{path}: {exc}") from None
    return arrays


def _interrupted(
    interrupt: StopAtStep,
    runs: dict[str, FitResult],
    save_path: str | None,
    checkpoint_path: str | None,
) -> SymdiffError:
    """The error a signal ends the command with: exit 128 + the signal (SIGINT 130, SIGTERM 143)."""
    signum = interrupt.signum or 0
    if not interrupt.stopped:  # the signal came after training ended
        message = (
            f"interrupted by {signal_name(signum)} after training ended; the results are complete"
        )
    else:
        stopped = list(runs.values())[-1]  # the run the signal stopped (later ones never began)
        kept = [f"saved to {save_path}"] if save_path not in (None, STDOUT) else []
        if checkpoint_path is not None:
            kept.append(f"go on with --resume {checkpoint_path}")
        reason = stopped.message.split(";")[0]
        message = f"training was {reason}; the parameters reached are reported" + (
            f" ({'; '.join(kept)})" if kept else ""
        )
    error = SymdiffError(message)
    error.exit_code = exit_code(signum)
    return error


def _optimizer(spec: str, lr: float, schedule: str, clip_norm: float | None) -> Optimizer:
    """An optimizer from 'name:key=value,...'; lr= in the spec overrides --lr."""
    name, settings = parse_spec(spec)
    if "schedule" in settings:
        raise InputError(f"set the schedule with --schedule, not inside '{spec}'")
    return make_optimizer(name, schedule=schedule, **{"lr": lr, "clip_norm": clip_norm, **settings})


def _initial_values(init: str | None, names: list[str]) -> dict[str, float]:
    from ..calculus import api as calculus

    if init is None:
        return {}
    values: dict[str, float] = {}
    try:
        point = calculus.parse_point(init)
    except InputError as exc:
        raise InputError(f"--init: {exc}") from None
    for key, value in point.items():
        if key not in names:
            raise InputError(f"--init names '{key}', which is not a parameter ({', '.join(names)})")
        number = calculus.numeric(value)
        if number is None:
            raise InputError(f"--init value of '{key}' is not a real number")
        values[key] = number
    return values


def _batch_size(text: str) -> BatchSize:
    text = text.strip().lower()
    if text in ("auto", "full"):
        return None if text == "full" else "auto"
    size = parse_float(text, "--batch-size")
    if not size.is_integer() or size < 1:
        raise InputError(f"--batch-size must be full, auto or a whole number >= 1, got '{text}'")
    return int(size)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], Callback]]:
    """Makes, for each run, a callback that advances a progress bar on stderr, showing the mean
    batch loss of the epoch so far, when stderr is a terminal (the bar is drawn there: a
    terminal on stdout alone gets none, so nothing leaks into a redirected stderr)."""
    if total < PROGRESS_MIN_STEPS or not sys.stderr.isatty():
        yield lambda: lambda info: None
        return
    current = {"loss": ""}  # what the bar shows after the percentage
    progress: click._termui_impl.ProgressBar[int] = click.progressbar(
        length=total,
        label="training",
        file=sys.stderr,
        item_show_func=lambda _item: current["loss"],
    )
    with progress as bar:

        def for_run() -> Callback:
            done = 0  # steps of this run shown so far (a resumed run starts past 0)
            epoch: list[float] = []  # batch losses of the epoch so far (SGD's alone are noise)

            def advance(info: StepInfo) -> None:
                nonlocal done
                epoch.append(info.loss)
                current["loss"] = f"loss {math.fsum(epoch) / len(epoch):.6g}"
                if info.epoch_done:
                    epoch.clear()
                bar.update(info.step - done)
                done = info.step

            return advance

        yield for_run


def _saved(result: FitResult) -> dict[str, Any]:
    data = result.to_dict()
    del data["history"]
    return data


def thin_history(history: dict[str, Any], points: int | None = HISTORY_POINTS) -> dict[str, Any]:
    """A JSON history with at most ``points`` evenly spaced entries per list, plus the last:
    ``step`` holds the step index t of each kept ``loss``/``grad_norm``/``lr`` entry and
    ``epoch`` the epoch index of each kept ``epoch_loss``/``epoch_end`` entry."""
    steps = _spaced(len(history["loss"]), points)
    epochs = _spaced(len(history["epoch_loss"]), points)
    thinned: dict[str, Any] = {}
    for key, values in history.items():
        kept = epochs if key.startswith("epoch") else steps
        thinned[key] = [values[i] for i in kept if i < len(values)]
    return {**thinned, "step": steps, "epoch": epochs}


def _spaced(count: int, points: int | None) -> list[int]:
    """0 .. count-1, or every k-th of them (at most ``points``) and the last."""
    if points is None or count <= points + 1:
        return list(range(count))
    kept = list(range(0, count, math.ceil(count / points)))
    if kept[-1] != count - 1:
        kept.append(count - 1)
    return kept


def _render(
    runs: dict[str, FitResult],
    optimizers: dict[str, Optimizer],
    fmt: str,
    history_points: int | None = HISTORY_POINTS,
) -> str:
    """The first run in full; each --compare run as one line (JSON: under "compare")."""
    (main, result), *others = runs.items()
    if fmt == "json":
        data = result.to_dict()
        data["history"] = thin_history(data["history"], history_points)
        data["optimizer"] = _description(optimizers[main])
        if others:
            data["compare"] = {
                spec: {**_saved(other), "optimizer": _description(optimizers[spec])}
                for spec, other in others
            }
        return json.dumps(data, indent=2)
    width = max(len(name) for name in result.params) if result.params else 0
    lines = [
        f"optimizer: {optimizers[main].name} ({_settings_text(optimizers[main])})",
        f"{result.message}",
        f"steps: {result.steps}, epochs: {result.epochs}",
        f"loss: {result.loss:.10g}",
        f"gradient norm: {result.grad_norm:.4g}",
        "parameters:",
        *(f"  {name.ljust(width)} = {text}" for name, text in result.param_lines()),
    ]
    for spec, other in others:
        lines.append(
            f"compare {optimizers[spec].name} ({_settings_text(optimizers[spec])}): "
            f"loss {other.loss:.10g}, gradient norm {other.grad_norm:.4g}, {other.steps} steps; "
            f"{other.message}"
        )
    return "\n".join(lines)


def _label(spec: str, optimizer: Optimizer) -> str:
    """A run's name on the plot: the optimizer, its learning rate, the settings given in the
    spec and a schedule other than constant: 'momentum (lr=0.05, mu=0.8)'."""
    given = parse_spec(spec)[1]
    settings = optimizer.hyperparameters()
    shown = {key: value for key, value in settings.items() if key == "lr" or key in given}
    if settings.get("schedule") not in (None, "constant"):
        shown["schedule"] = settings["schedule"]
    return f"{optimizer.name} (" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")"


def _description(optimizer: Optimizer) -> dict[str, Any]:
    return {"name": optimizer.name, **optimizer.hyperparameters()}


def _settings_text(optimizer: Optimizer) -> str:
    shown = {k: v for k, v in optimizer.hyperparameters().items() if v is not None}
    if shown.get("schedule") == "constant":
        shown.pop("schedule")
    return ", ".join(f"{key}={value}" for key, value in shown.items())
