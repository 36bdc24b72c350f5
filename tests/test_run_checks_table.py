"""The runner's checks take each workflow's facts from its row in workflows.SHIPPED (several --aus, the file --out
names, which workflows take --aus, Image Scale's 0), so a new row needs no branch in workflows/run_checks.py."""
import dataclasses

import pytest
from PIL import Image

from workflows import SHIPPED
from workflows import run as headless
from workflows.run_checks import UsageError, check_args

parse = headless.build_parser().parse_args


def test_width_0_keeps_the_aspect_ratio_where_image_scale_takes_it(tmp_path):
    png = str(tmp_path / "photo.png")
    Image.new("RGB", (16, 16)).save(png)
    check_args(parse(["--image", png, "--width", "0", "--height", "512"]), "redraw")  # no error
    with pytest.raises(UsageError, match=r"--width 0: give a positive multiple of 8, e\.g\. 512"):
        check_args(parse(["--width", "0"]), "basic")


def test_a_new_row_with_several_aus_and_its_own_out_file_needs_no_branch(monkeypatch, tmp_path):
    monkeypatch.setitem(SHIPPED, "cards", dataclasses.replace(SHIPPED["grid"], out=".gif"))
    several = parse(["--aus", "neutral; happiness", "--out", str(tmp_path / "x.gif")])
    check_args(several, "cards")  # several expressions and a .gif: no error
    assert headless.choose_workflow(several) == "grid"  # the first row that takes several
    with pytest.raises(UsageError, match=r"for the grid and cards workflows \(--workflow grid\)"):
        check_args(parse(["--aus", "neutral; happiness"]), "basic")
    with pytest.raises(UsageError, match=r"x\.png: must be a \.gif file$"):
        check_args(parse(["--out", str(tmp_path / "x.png")]), "cards")
    with pytest.raises(UsageError, match=r"--aus belongs to the basic, edit, redraw, face_crop, grid and cards workflows"):
        check_args(parse(["--sweep", "AU12", "--aus", "happiness"]), "sweep")


def test_the_rows_say_which_workflow_takes_several_aus_and_which_writes_an_animation():
    assert [name for name, row in SHIPPED.items() if row.several_aus] == ["grid"]
    assert {name: row.out for name, row in SHIPPED.items() if row.out != ".png"} == {"animation": ".webp"}
