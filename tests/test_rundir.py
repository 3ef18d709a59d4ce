"""The run-directory contract (szmass.rundir) and the CPU modules that read runs without TensorFlow."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from szmass.rundir import (
    HISTORY_COLUMNS,
    PREDICTION_COLUMNS,
    read_bin_edges,
    read_history,
    read_predictions,
    read_selection,
    read_target_mass,
    selected_run,
    write_bin_edges,
)
from szmass.zbins import REDSHIFT_EDGES

CPU_MODULES = ("szmass.rundir", "szmass.runs", "szmass.select", "szmass.splits", "szmass.tables",
               "szmass.supplementary", "szmass.studies", "szmass.evaluate", "szmass.plots", "szmass.sbi",
               "szmass.paper_tables", "szmass.catalogue")  # fmt: skip


def test_cpu_modules_do_not_load_tensorflow() -> None:
    code = (f"import sys; import {', '.join(CPU_MODULES)}; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_readers_check_the_columns_and_name_the_file(tmp_path: Path) -> None:
    run = tmp_path / "seed3"
    run.mkdir()
    pd.DataFrame({c: [1.0] for c in PREDICTION_COLUMNS}).to_csv(run / "predictions.csv", index=False)
    pd.DataFrame({c: [1.0] for c in HISTORY_COLUMNS}).to_csv(run / "history.csv", index=False)
    assert list(read_predictions(run).columns) == list(PREDICTION_COLUMNS)
    assert list(read_history(run).columns) == list(HISTORY_COLUMNS)
    pd.DataFrame({"epoch": [1], "loss": [0.1]}).to_csv(run / "history.csv", index=False)
    with pytest.raises(ValueError, match=r"seed3/history.csv: column\(s\) \['val_loss'\] missing"):
        read_history(run)
    selection = tmp_path / "selection.csv"
    pd.DataFrame({"run_dir": ["a", "b"], "passed": [True, True], "selected": [False, True]}).to_csv(selection,
                                                                                                    index=False)
    assert selected_run(read_selection(selection)) == "b"
    pd.DataFrame({"run_dir": ["a", "b"], "passed": [True, True], "selected": [True, True]}).to_csv(selection,
                                                                                                   index=False)
    with pytest.raises(ValueError, match=r"selection.csv: column 'selected': expected exactly one selected run, got 2"):
        read_selection(selection)


def test_bin_edges_round_trip_default_and_bad_file(tmp_path: Path) -> None:
    assert read_bin_edges(tmp_path) == REDSHIFT_EDGES  # no redshift_bins.json: the paper's four bins
    write_bin_edges(tmp_path, (0.0, 0.25, 1.0))
    assert read_bin_edges(tmp_path) == (0.0, 0.25, 1.0)
    with pytest.raises(ValueError):
        write_bin_edges(tmp_path, (0.0, 0.5, 0.4))
    assert read_bin_edges(tmp_path) == (0.0, 0.25, 1.0)  # the failed write left the file alone
    assert read_target_mass(tmp_path) == "M500"
    write_bin_edges(tmp_path, (0.0, 1.0), "M200")
    assert read_target_mass(tmp_path) == "M200" and read_bin_edges(tmp_path) == (0.0, 1.0)
    with pytest.raises(ValueError, match=r"target mass must be one of \['M500', 'M200'\], got 'M100'"):
        write_bin_edges(tmp_path, (0.0, 1.0), "M100")
    (tmp_path / "redshift_bins.json").write_text('{"edges": [0, 1], "target_mass": "Mvir"}')
    with pytest.raises(ValueError, match=r"redshift_bins.json: field 'target_mass': target mass must be one of"):
        read_target_mass(tmp_path)
    (tmp_path / "redshift_bins.json").write_text('{"edges": [0, 1]}')  # a run of an earlier version
    assert read_target_mass(tmp_path) == "M500"
    (tmp_path / "redshift_bins.json").write_text('{"bins": [0, 1]}')
    with pytest.raises(ValueError, match=r"redshift_bins.json: field 'edges': expected increasing redshift bin edges"):
        read_bin_edges(tmp_path)
