"""`mbnas space info|draw|cost` run for real and print what they should."""

from __future__ import annotations

import json

import pytest

from mbnas.cli import main
from mbnas.spaces.mbnas import get_space, kernel_space, preset


@pytest.mark.parametrize("name", ["mbnas", "macro", "micro"])
def test_info_prints_variables_and_exact_size(name, capsys):
    assert main(["space", "info", "--space", name]) == 0
    out = capsys.readouterr().out
    space = get_space(name)
    assert f"{space.size():,} valid genotypes" in out
    for v in space.variables()[:4]:
        kind_line = next(line for line in out.splitlines() if f"{v.kind}1..{v.kind}10" in line)
        assert ", ".join(map(str, v.options)) in kind_line


def test_info_mbnas_prints_the_papers_size_next_to_the_exact_one(capsys):
    assert main(["space", "info", "--space", "mbnas"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "paper" in x)
    assert "1.14e+18" in line and f"{get_space('mbnas').size():.3g}" in line
    assert "does not publish its counting rules" in line


def test_info_macro_prints_both_phases_of_bilevel_search(capsys):
    assert main(["space", "info", "--space", "macro"]) == 0
    out = capsys.readouterr().out
    assert "Bilevel-NAS (--strategy bilevel) phase 2" in out
    assert f"{get_space('macro').size():,}" in out
    assert f"{kernel_space(preset('unet')).size():,}" in out


def test_draw_from_a_search_result_file(tmp_path, capsys):
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"genotype": preset("unet").to_dict(), "score": 0.91}))
    assert main(["space", "draw", str(best), "--out", str(tmp_path / "pic")]) == 0
    assert (tmp_path / "pic.png").stat().st_size > 0 and (tmp_path / "pic.svg").exists()
    assert "skip <- node 2" in capsys.readouterr().out
    assert main(["space", "draw", str(best)]) == 0  # default prefix: next to the file
    assert (tmp_path / "best.png").exists() and (tmp_path / "best.svg").exists()


def test_draw_a_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["space", "draw", "unet"]) == 0
    assert (tmp_path / "unet.png").exists()


def test_cost_of_a_genotype_and_a_baseline(tmp_path, capsys):
    path = tmp_path / "g.json"
    path.write_text(preset("unet").to_json())
    assert main(["space", "cost", str(path), "--size", "32", "--classes", "2"]) == 0
    out = capsys.readouterr().out
    assert "MMAC @ 32x32" in out and "activation memory" in out
    assert f"genotype {preset('unet').key}" in out
    assert main(["space", "cost", "smp-unet", "--size", "32", "--classes", "1",
                 "--no-memory"]) == 0
    out = capsys.readouterr().out
    assert "Unet('vgg13')" in out and "18.44 M" in out and "MMAC @ 32x32" in out


def test_unet_is_the_preset_everywhere_and_old_baseline_names_are_noted(capsys):
    """`space cost unet` costs the same network as `space draw unet` and `--start unet`."""
    assert main(["space", "cost", "unet", "--size", "32", "--no-memory"]) == 0
    assert f"genotype {preset('unet').key}" in capsys.readouterr().out
    with pytest.warns(FutureWarning, match="'resunet' is now called 'smp-resunet'"):
        assert main(["space", "cost", "resunet", "--size", "32", "--no-memory"]) == 0
    assert "Unet('resnet50')" in capsys.readouterr().out


def test_space_info_lists_only_the_skip_options_of_the_space(capsys):
    from mbnas.spaces.mbnas import get_space, space_names

    for name in space_names():
        options = get_space(name).options.get("d")
        assert main(["space", "info", "--space", name]) == 0
        out = capsys.readouterr().out
        if options is not None and 3 not in options:
            assert "3 both" not in out
        if options is not None and 3 in options:
            assert "3 both" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["space", "cost", "{bad}"], "is not valid JSON"),
        (["space", "draw", "{bad}"], "is not valid JSON"),
        (["space", "draw", "{invalid}"], "ends at level 1"),
        (["space", "cost", "{missing}"], "does not exist"),
        (["space", "cost", "vnet"], "unknown architecture 'vnet'"),
        (["space", "draw", "resunet"], "unknown genotype 'resunet'"),
        (["space", "cost", "preset:unet", "--size", "36"], "not divisible by 8"),
        (["space", "info", "--space", "micro", "--max-depth", "2"], "max_depth 2"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(argv, message, tmp_path, capsys):
    files = {"{bad}": tmp_path / "bad.json", "{invalid}": tmp_path / "invalid.json",
             "{missing}": tmp_path / "missing.json"}
    files["{bad}"].write_text("{not json")
    files["{invalid}"].write_text(json.dumps({"nodes": [
        {"channels": "down", "block": "vgg", "kernel": 3, "skip": 0}]}))
    named = [files[a] for a in argv if a in files]
    argv = [str(files.get(a, a)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    for path in named:  # errors about a file name the file
        assert str(path) in err


@pytest.mark.parametrize("name", ["f.png", "f.svg", "f.PNG"])
def test_draw_out_with_an_image_suffix_writes_that_file(tmp_path, name):
    assert main(["space", "draw", "unet", "--out", str(tmp_path / name)]) == 0
    assert sorted(p.name.lower() for p in tmp_path.iterdir()) == ["f.png", "f.svg"]


def test_cost_at_a_given_base_width_costs_that_network(capsys):
    from mbnas.spaces.mbnas import build_model

    params = {}
    for width in (8, 32):
        assert main(["space", "cost", "unet", "--size", "32", "--no-memory",
                     "--base-channels", str(width)]) == 0
        out = capsys.readouterr().out
        model = build_model(preset("unet"), 1, 2, base_channels=width)
        count = sum(p.numel() for p in model.parameters())
        params[width] = count
        assert f"({count:,})" in out, out
    assert params[8] < params[32]
    assert main(["space", "cost", "unet", "--size", "32", "--no-memory"]) == 0
    assert f"({params[32]:,})" in capsys.readouterr().out  # the default: the paper's 32


@pytest.mark.parametrize("name", ["mbnas", "macro", "mbnas-3d"])
def test_info_counts_without_importing_torch(name):
    """`space info` took 10-13 s on a laptop because importing the space imported torch."""
    import subprocess
    import sys

    code = ("import sys; from mbnas.cli import main; "
            f"assert main(['space', 'info', '--space', {name!r}]) == 0; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-400:]
    assert "valid genotypes" in done.stdout
