"""Readers and writers of THE THREE HUNDRED inputs (szmass.sims): GADGET snapshots and AHF catalogues.

Unit conversions are checked against astropy units and constants computed here, independently of the
package; the hand-built binary files follow the GADGET-2 user guide's layout, written with struct.
"""

from __future__ import annotations

import struct
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy import constants as const
from astropy import units as u

from szmass.sims import (
    GadgetHeader,
    SnapshotError,
    read_ahf_halos,
    read_snapshot,
    read_snapshot_header,
    require_columns,
    write_ahf_halos,
    write_snapshot,
)
from szmass.sims import gadget_binary, gadget_hdf5

Z, BOX, H, OM, OL = 0.25, 2000.0, 0.6777, 0.307115, 0.692885
A = 1.0 / (1.0 + Z)
HEADER = GadgetHeader(redshift=Z, box_size=BOX, h=H, omega_m=OM, omega_lambda=OL)


def particles(seed: int, n_gas: int = 400, n_dm: int = 600, equal_dm_mass: bool = True) -> tuple[dict, dict]:
    """Random gas and dark matter in GADGET internal units."""
    rng = np.random.default_rng(seed)
    gas = {
        "POS": rng.uniform(0, BOX, (n_gas, 3)), "VEL": rng.normal(0, 300, (n_gas, 3)),
        "ID": rng.permutation(n_gas) + 1, "MASS": rng.uniform(0.02, 0.03, n_gas),
        "U": rng.uniform(1e2, 1e5, n_gas), "RHO": rng.lognormal(-10, 1, n_gas), "NE": rng.uniform(0.0, 1.2, n_gas),
        "NH": rng.uniform(0, 1e-3, n_gas), "HSML": rng.uniform(5, 50, n_gas),
    }
    dm_mass = np.full(n_dm, 0.127) if equal_dm_mass else rng.uniform(0.1, 0.2, n_dm)
    dm = {"POS": rng.uniform(0, BOX, (n_dm, 3)), "VEL": rng.normal(0, 300, (n_dm, 3)),
          "ID": np.arange(n_gas + 1, n_gas + n_dm + 1), "MASS": dm_mass}
    return gas, dm


def kpc(x: np.ndarray) -> np.ndarray:
    """Stored comoving kpc/h -> physical kpc with astropy units."""
    return (np.asarray(x, np.float32).astype(float) * u.kpc * A / H).to_value(u.kpc)


def msun(m: np.ndarray) -> np.ndarray:
    return (np.asarray(m, np.float32).astype(float) * 1e10 * u.Msun / H).to_value(u.Msun)


def temperature(u_kms2: np.ndarray, ne: np.ndarray) -> np.ndarray:
    """T = (gamma - 1) u mu m_p / k_B with mu = 4 / (1 + 3 X + 4 X ne), X = 0.76, from astropy constants."""
    mu = 4.0 / (1.0 + 3 * 0.76 + 4 * 0.76 * np.asarray(ne, np.float32).astype(float))
    energy = np.asarray(u_kms2, np.float32).astype(float) * (u.km / u.s) ** 2
    return ((2.0 / 3.0) * energy * mu * const.m_p / const.k_B).to_value(u.K)


def density(rho: np.ndarray) -> np.ndarray:
    stored = np.asarray(rho, np.float32).astype(float) * 1e10 * u.Msun / H / (u.kpc * A / H) ** 3
    return stored.to_value(u.Msun / u.kpc**3)


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(("fmt", "nfiles", "equal_dm_mass"), [
    ("hdf5", 1, True), ("gadget1", 1, False), ("gadget2", 1, True), ("gadget2", 2, False), ("hdf5", 3, False),
])
def test_round_trip(tmp_path: Path, fmt: str, nfiles: int, equal_dm_mass: bool) -> None:
    gas, dm = particles(seed=nfiles, equal_dm_mass=equal_dm_mass)
    paths = write_snapshot(tmp_path / "snap_042", HEADER, gas, dm, fmt=fmt, nfiles=nfiles)
    assert len(paths) == nfiles and all(p.is_file() for p in paths)
    if nfiles > 1:
        assert [p.name for p in paths] == [f"snap_042.{i}" + (".hdf5" if fmt == "hdf5" else "") for i in range(nfiles)]
    snap = read_snapshot(tmp_path / "snap_042", dark_matter=True)
    if fmt == "hdf5" and nfiles > 1:  # the writer's own name for the snapshot finds it too
        np.testing.assert_array_equal(read_snapshot(tmp_path / "snap_042.hdf5").ids, snap.ids)
    assert (snap.redshift, snap.h, snap.box_size, snap.omega_m, snap.omega_lambda) == (Z, H, BOX, OM, OL)
    assert snap.scale_factor == pytest.approx(A, rel=1e-15)
    np.testing.assert_allclose(snap.pos, kpc(gas["POS"]), rtol=1e-13)
    np.testing.assert_allclose(snap.mass, msun(gas["MASS"]), rtol=1e-13)
    np.testing.assert_allclose(snap.temperature, temperature(gas["U"], gas["NE"]), rtol=1e-12)
    np.testing.assert_array_equal(snap.ne, gas["NE"].astype(np.float32))
    np.testing.assert_allclose(snap.hsml, kpc(gas["HSML"]), rtol=1e-13)
    np.testing.assert_allclose(snap.rho, density(gas["RHO"]), rtol=1e-12)
    np.testing.assert_array_equal(snap.ids, gas["ID"])
    np.testing.assert_allclose(snap.dm_pos, kpc(dm["POS"]), rtol=1e-13)
    expected_dm = np.full(len(dm["MASS"]), 0.127e10 / H) if equal_dm_mass else msun(dm["MASS"])
    np.testing.assert_allclose(snap.dm_mass, expected_dm, rtol=1e-13)
    np.testing.assert_array_equal(snap.dm_type, np.ones(len(dm["MASS"]), np.int8))
    # Without dark_matter the DM fields stay empty, and the header alone is readable.
    assert read_snapshot(tmp_path / "snap_042").dm_pos is None
    assert read_snapshot_header(tmp_path / "snap_042").npart_total == (400, 600, 0, 0, 0, 0)


def test_large_ids_are_written_as_uint64(tmp_path: Path) -> None:
    gas, dm = particles(seed=3, n_gas=10, n_dm=10)
    gas["ID"] = gas["ID"] + 2**40
    write_snapshot(tmp_path / "snap", HEADER, gas, dm, fmt="gadget1")
    assert gadget_binary.BinaryFile(tmp_path / "snap")._dtype("ID") == np.dtype("<u8")
    np.testing.assert_array_equal(read_snapshot(tmp_path / "snap").ids, gas["ID"])


def test_without_cooling_gas_is_fully_ionised(tmp_path: Path) -> None:
    """Format 1 without Flag_Cooling has no NE/NH blocks (HSML follows RHO); ne is then the fully ionised value."""
    gas, _ = particles(seed=4)
    del gas["NE"], gas["NH"]
    header = GadgetHeader(redshift=Z, box_size=BOX, h=H, omega_m=OM, omega_lambda=OL, flag_cooling=0)
    write_snapshot(tmp_path / "snap", header, gas, fmt="gadget1")
    snap = read_snapshot(tmp_path / "snap")
    ne_ionised = 1.0 + 2.0 * (1 - 0.76) / (4 * 0.76)  # one electron per H, two per He
    np.testing.assert_allclose(snap.ne, ne_ionised, rtol=1e-15)
    np.testing.assert_allclose(snap.temperature, temperature(gas["U"], np.full(400, ne_ionised)), rtol=1e-6)
    np.testing.assert_allclose(snap.hsml, kpc(gas["HSML"]), rtol=1e-13)


# ------------------------------------------------------------------- hand-built GADGET format 2, big-endian


def f2_block(label: str, payload: bytes, e: str = ">", end_marker: int | None = None) -> bytes:
    """A format-2 block: the 8-byte label record, then the data record."""
    n = len(payload)
    tail = n if end_marker is None else end_marker
    return struct.pack(e + "i4sii", 8, label.encode(), n + 8, 8) + struct.pack(e + "i", n) + payload + struct.pack(e + "i", tail)


def header_payload(npart: list[int], mass_table: list[float], e: str = ">", flag_cooling: int = 1,
                   num_files: int = 1) -> bytes:
    """The 256-byte GADGET-2 header (io_header in allvars.h)."""
    packed = struct.pack(e + "6i6d2d2i6I2i4d2i6Ii", *npart, *mass_table, A, Z, 0, 0, *npart, flag_cooling, num_files,
                         BOX, OM, OL, H, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return packed.ljust(256, b"\0")


def hand_built(path: Path, omit: str = "", hsml: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Big-endian format 2, blocks in a non-standard order with an unknown block, float64 RHO, uint64 IDs.

    3 gas particles, 2 of type 1 (mass from MassTable) and 1 of type 2 (mass in the MASS block).
    """
    e = ">"
    v = {
        "POS": np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 15], [16, 17, 18]], float),
        "ID": np.array([11, 12, 13, 2**33, 2**33 + 1, 7], np.uint64),
        "MASS": np.array([0.02, 0.021, 0.022, 0.9]),  # gas x 3, then type 2
        "U": np.array([1e3, 2e3, 3e3]), "RHO": np.array([1e-5, 2e-5, 3e-5]), "NE": np.array([1.1, 1.0, 0.5]),
        "HSML": np.array([10.0, 20.0, 30.0]) if hsml is None else hsml,
    }
    blocks = [
        ("HEAD", header_payload([3, 2, 1, 0, 0, 0], [0, 0.127, 0, 0, 0, 0], e)),
        ("HSML", v["HSML"].astype(e + "f4").tobytes()),
        ("ZZZZ", b"\x01" * 20),  # unknown: skipped
        ("U   ", v["U"].astype(e + "f4").tobytes()),
        ("POS ", v["POS"].astype(e + "f4").tobytes()),
        ("RHO ", v["RHO"].astype(e + "f8").tobytes()),
        ("ID  ", v["ID"].astype(e + "u8").tobytes()),
        ("MASS", v["MASS"].astype(e + "f4").tobytes()),
        ("NE  ", v["NE"].astype(e + "f4").tobytes()),
    ]
    path.write_bytes(b"".join(f2_block(label, payload, e) for label, payload in blocks if label.strip() != omit))
    return v


def test_hand_built_format2_big_endian(tmp_path: Path) -> None:
    v = hand_built(tmp_path / "snap_000")
    snap = read_snapshot(tmp_path / "snap_000", dark_matter=True)
    np.testing.assert_allclose(snap.pos, kpc(v["POS"][:3]), rtol=1e-13)
    np.testing.assert_allclose(snap.mass, msun(v["MASS"][:3]), rtol=1e-13)
    np.testing.assert_allclose(snap.temperature, temperature(v["U"], v["NE"]), rtol=1e-12)
    np.testing.assert_allclose(snap.hsml, kpc(v["HSML"]), rtol=1e-13)
    np.testing.assert_allclose(snap.rho, v["RHO"] * 1e10 * H**2 / A**3, rtol=1e-14)  # float64 block: no rounding
    np.testing.assert_array_equal(snap.ids, v["ID"][:3])
    np.testing.assert_allclose(snap.dm_pos, kpc(v["POS"][3:]), rtol=1e-13)
    np.testing.assert_allclose(snap.dm_mass, [0.127e10 / H, 0.127e10 / H, msun(v["MASS"][3:])[0]], rtol=1e-13)
    np.testing.assert_array_equal(snap.dm_type, [1, 1, 2])


# ------------------------------------------------------------------------------------- sphere selection


def brute_force_within(pos: np.ndarray, centre: np.ndarray, radius: float, box: float) -> np.ndarray:
    """Particles within ``radius`` of ``centre`` in any of the 27 periodic images."""
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]) * box
    d = np.linalg.norm(pos[:, None, :] + shifts[None] - centre, axis=2).min(axis=1)
    return d <= radius


@pytest.mark.parametrize("fmt", ["gadget2", "hdf5"])
def test_sphere_selection_wraps_and_matches_full_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.setattr(gadget_hdf5, "PIECE_ROWS", 37)  # several slabs per dataset, some without selected rows
    gas, dm = particles(seed=5, n_gas=3000, n_dm=2000)
    write_snapshot(tmp_path / "snap", HEADER, gas, dm, fmt=fmt, nfiles=2)
    full = read_snapshot(tmp_path / "snap", dark_matter=True)
    box = BOX * A / H
    centres = np.array([[0.02 * box, 0.98 * box, 0.5 * box], [0.6 * box, 0.3 * box, 0.01 * box]])
    radii = np.array([0.2 * box, 0.15 * box])
    snap = read_snapshot(tmp_path / "snap", centre=centres, radius=radii, dark_matter=True)
    within = [brute_force_within(full.pos, c, r, box) for c, r in zip(centres, radii)]
    expected = within[0] | within[1]
    # Both spheres contribute and the first one reaches across the box faces.
    assert within[0].sum() > 20 and within[1].sum() > 20
    assert np.any(np.abs(full.pos[within[0]] - centres[0]).max(axis=1) > box / 2)
    np.testing.assert_array_equal(snap.ids, full.ids[expected])
    for name in ("pos", "mass", "temperature", "ne", "hsml", "rho"):
        np.testing.assert_array_equal(getattr(snap, name), getattr(full, name)[expected], err_msg=name)
    dm_expected = brute_force_within(full.dm_pos, centres[0], radii[0], box) | brute_force_within(
        full.dm_pos, centres[1], radii[1], box)
    np.testing.assert_array_equal(snap.dm_pos, full.dm_pos[dm_expected])
    np.testing.assert_array_equal(snap.dm_mass, full.dm_mass[dm_expected])
    # A single centre with a scalar radius.
    one = read_snapshot(tmp_path / "snap", centre=centres[1], radius=radii[1])
    np.testing.assert_array_equal(one.ids, full.ids[within[1]])


def test_selection_reads_each_block_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Positions are read whole, every other block once and only through the selection mask."""
    gas, dm = particles(seed=6)
    write_snapshot(tmp_path / "snap", HEADER, gas, dm, fmt="gadget2")
    calls: list[tuple[str, int, bool]] = []
    original = gadget_binary.BinaryFile.read

    def spy(self, block, ptype, mask=None):  # noqa: ANN001, ANN202
        calls.append((block, ptype, mask is None))
        return original(self, block, ptype, mask)

    monkeypatch.setattr(gadget_binary.BinaryFile, "read", spy)
    read_snapshot(tmp_path / "snap", centre=[100.0, 100.0, 100.0], radius=300.0)
    assert sorted(calls) == sorted([("POS", 0, True)] + [(b, 0, False) for b in ("MASS", "U", "NE", "RHO", "HSML", "ID")])


def test_centre_outside_box(tmp_path: Path) -> None:
    gas, _ = particles(seed=7)
    write_snapshot(tmp_path / "snap", HEADER, gas, fmt="gadget2")
    with pytest.raises(ValueError, match="outside the periodic box"):
        read_snapshot(tmp_path / "snap", centre=[10.0, 10.0, 1.01 * BOX * A / H], radius=10.0)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("fmt", ["gadget1", "gadget2"])
def test_truncated_snapshot(tmp_path: Path, fmt: str) -> None:
    gas, dm = particles(seed=8)
    path = tmp_path / "snap"
    write_snapshot(path, HEADER, gas, dm, fmt=fmt)
    offset, nbytes = gadget_binary.BinaryFile(path).blocks["U"]
    path.write_bytes(path.read_bytes()[: offset + nbytes // 2])
    with pytest.raises(SnapshotError, match=rf"file {path}: block 'U   ' truncated: expected {nbytes} bytes, found {nbytes // 2}"):
        read_snapshot(path)


def test_truncated_hdf5(tmp_path: Path) -> None:
    gas, _ = particles(seed=9)
    path = tmp_path / "snap.hdf5"
    write_snapshot(path, HEADER, gas, fmt="hdf5")
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(SnapshotError, match=str(path)):
        read_snapshot(path)


def test_inconsistent_record_markers(tmp_path: Path) -> None:
    path = tmp_path / "snap"
    good = hand_built(path)
    data = path.read_bytes()
    bad = f2_block("U   ", good["U"].astype(">f4").tobytes(), end_marker=99)
    path.write_bytes(data.replace(f2_block("U   ", good["U"].astype(">f4").tobytes()), bad))
    with pytest.raises(SnapshotError, match=rf"file {path}: block 'U   ': inconsistent record markers 12 and 99"):
        read_snapshot(path)


def test_missing_hsml(tmp_path: Path) -> None:
    hand_built(tmp_path / "snap", omit="HSML")
    with pytest.raises(SnapshotError, match=r"snap: block 'HSML' \(smoothing length.*not found.*gas blocks needed"):
        read_snapshot(tmp_path / "snap")
    gas, _ = particles(seed=10)
    path = tmp_path / "snap.hdf5"
    write_snapshot(path, HEADER, gas, fmt="hdf5")
    with h5py.File(path, "a") as f:
        del f["PartType0/SmoothingLength"]
    with pytest.raises(SnapshotError, match=rf"file {path}: block 'HSML' \(smoothing length, HDF5 PartType0/SmoothingLength"):
        read_snapshot(path)


def test_non_finite_and_non_positive_values(tmp_path: Path) -> None:
    hand_built(tmp_path / "snap", hsml=np.array([10.0, np.nan, np.inf]))
    with pytest.raises(SnapshotError, match=rf"file {tmp_path / 'snap'}: block 'HSML' has 2 non-finite values"):
        read_snapshot(tmp_path / "snap")
    hand_built(tmp_path / "snap", hsml=np.array([10.0, 0.0, 5.0]))
    with pytest.raises(SnapshotError, match=r"block 'HSML' has 1 non-positive value\(s\); expected > 0"):
        read_snapshot(tmp_path / "snap")


def test_not_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(np.random.default_rng(11).integers(1000, 2000, 100, dtype=np.int32).tobytes())
    with pytest.raises(SnapshotError, match=rf"file {path}: not a GADGET snapshot"):
        read_snapshot(path)
    with pytest.raises(FileNotFoundError, match="snap_999"):
        read_snapshot(tmp_path / "snap_999")


def test_multi_file_count_must_match_header(tmp_path: Path) -> None:
    gas, dm = particles(seed=12)
    paths = write_snapshot(tmp_path / "snap", HEADER, gas, dm, fmt="gadget2", nfiles=3)
    paths[2].unlink()
    with pytest.raises(SnapshotError, match=r"NumFilesPerSnapshot = 3 but 2 file\(s\) found"):
        read_snapshot(tmp_path / "snap")
    paths[1].unlink()
    with pytest.raises(SnapshotError, match=r"file indices \[0, 2\]|NumFilesPerSnapshot = 3 but 1"):
        read_snapshot(tmp_path / "snap")
    # A stale extra file beside a single-file snapshot written as snap.0 is reported too.
    write_snapshot(tmp_path / "other", HEADER, gas, dm, fmt="gadget2", nfiles=2)
    (tmp_path / "other.2").write_bytes((tmp_path / "other.1").read_bytes())
    with pytest.raises(SnapshotError, match=r"NumFilesPerSnapshot = 2 but 3 file\(s\) found"):
        read_snapshot(tmp_path / "other")


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gas, dm = particles(seed=13)
    original = gadget_binary.write_binary
    written: list[Path] = []

    def fail_on_second(header, blocks, path, fmt):  # noqa: ANN001, ANN202
        if written:
            raise OSError("disk full")
        written.append(path)
        original(header, blocks, path, fmt)

    import szmass.sims as sims

    monkeypatch.setattr(sims, "write_binary", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        write_snapshot(tmp_path / "snap", HEADER, gas, dm, fmt="gadget2", nfiles=2)
    assert list(tmp_path.iterdir()) == []
    bad = dict(gas)
    del bad["HSML"]
    with pytest.raises(ValueError, match=r"missing \['HSML'\]"):
        write_snapshot(tmp_path / "snap", HEADER, bad, dm)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------------ AHF


AHF_TEXT = """#Mvir(1)\tID(2) Xc(3)\tfMhires(4)  hostHalo(5)\tRvir(6)\tYc(7)\tZc(8)
1.5e15\t128000000000001 500000.5\t1.0  -1\t2000.0\t400000.25\t300000.0
2.0e14\t128000000000002 500100.5\t0.97  128000000000001\t900.0\t400100.25\t300100.0
"""


def test_ahf_columns_by_name(tmp_path: Path) -> None:
    path = tmp_path / "halos.AHF_halos"
    path.write_text(AHF_TEXT)
    df = read_ahf_halos(path)
    assert list(df.columns) == ["Mvir", "ID", "Xc", "fMhires", "hostHalo", "Rvir", "Yc", "Zc"]
    assert df["ID"].dtype == np.int64 and df["hostHalo"].dtype == np.int64
    assert df["ID"].tolist() == [128000000000001, 128000000000002]
    assert df["hostHalo"].tolist() == [-1, 128000000000001]
    np.testing.assert_array_equal(df["Mvir"], [1.5e15, 2.0e14])
    np.testing.assert_array_equal(df["Yc"], [400000.25, 400100.25])
    require_columns(df, ["ID", "Mvir", "fMhires"], path)


def test_ahf_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    df = pd.DataFrame({
        "ID": np.arange(5, dtype=np.int64) + 128000000000001, "hostHalo": np.array([-1, -1, 128000000000001, -1, 3]),
        "numSubStruct": np.array([3, 0, 0, 1, 0], dtype=np.int64), "Mvir": 10 ** rng.uniform(13, 15.5, 5),
        "Xc": rng.uniform(0, 1e6, 5), "fMhires": rng.uniform(0.9, 1, 5).astype(np.float32).astype(float),
    })
    path = tmp_path / "out.AHF_halos"
    write_ahf_halos(path, df)
    assert path.read_text().splitlines()[0] == "#ID(1)\thostHalo(2)\tnumSubStruct(3)\tMvir(4)\tXc(5)\tfMhires(6)"
    back = read_ahf_halos(path)
    pd.testing.assert_frame_equal(back, df.astype({"numSubStruct": float}), check_exact=True)


def test_ahf_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "halos.AHF_halos"
    path.write_text(AHF_TEXT.replace("fMhires(4)", "npart(4)"))
    df = read_ahf_halos(path)
    with pytest.raises(ValueError, match=rf"file {path}: AHF columns \['fMhires'\] missing; found \['Mvir', 'ID'"):
        require_columns(df, ["ID", "fMhires", "Mvir"], path)


def test_ahf_malformed_rows(tmp_path: Path) -> None:
    path = tmp_path / "halos.AHF_halos"
    path.write_text(AHF_TEXT + "3.0e14\t7 1.0 2.0\n")
    with pytest.raises(ValueError, match=rf"file {path}, line 4: 4 values, expected 8"):
        read_ahf_halos(path)
    path.write_text(AHF_TEXT.replace("500100.5", "nope"))
    with pytest.raises(ValueError, match=rf"file {path}: column 'Xc' has a value that is not float64"):
        read_ahf_halos(path)
    path.write_text(AHF_TEXT.split("\n", 1)[1])
    with pytest.raises(ValueError, match=rf"file {path}: line 1 must be the '#' header"):
        read_ahf_halos(path)
