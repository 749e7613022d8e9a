import numpy as np
import pytest

from sdn.io import atomic_write_bytes, npz_bytes, save_npz


def test_npz_is_deterministic_and_loadable(tmp_path):
    arrays = {"a": np.arange(10, dtype=np.float16), "b": np.packbits(np.array([1, 0, 1], bool))}
    assert npz_bytes(arrays) == npz_bytes({k: v.copy() for k, v in arrays.items()})
    save_npz(tmp_path / "x.npz", arrays)
    with np.load(tmp_path / "x.npz") as z:
        assert z.files == ["a", "b"]
        np.testing.assert_array_equal(z["a"], arrays["a"])
        assert z["a"].dtype == np.float16


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
