"""mixer.outputs: a user's output file is checked before any work and written whole."""

import pytest

from mixer.errors import MixerError
from mixer.outputs import check_output, write_atomically


def test_check_output_names_the_missing_folder_a_folder_and_a_bad_suffix(tmp_path):
    assert check_output(tmp_path / "x.png", (".png",)) == tmp_path / "x.png"
    with pytest.raises(MixerError, match=f"folder {tmp_path / 'nodir'} does not exist"):
        check_output(tmp_path / "nodir" / "x.png")
    with pytest.raises(MixerError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(MixerError, match="use a .png or .svg file name"):
        check_output(tmp_path / "x.jpg", (".png", ".svg"))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")

    def half_then_fail(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, half_then_fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    write_atomically(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
