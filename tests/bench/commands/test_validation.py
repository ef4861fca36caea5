"""Every numeric option is checked before anything runs: the message names the option,
the value and the valid range, and nothing is written."""
import pytest

from bench.cli import main


def _run(tmp_path, *extra):
    return ["run", "--out", str(tmp_path / "out"), "--no-progress", *extra]


@pytest.mark.parametrize("option,value,expected", [
    ("--shots", "-3", "must be an integer in [1, 1000000], got -3"),
    ("--shots", "three", "must be an integer in [1, 1000000], got 'three'"),
    ("--eval-shots", "0", "must be an integer in [1, 1000000], got 0"),
    ("--seeds", "0", "must be an integer in [1, 1000], got 0"),
    ("--seed", "-1", "must be an integer in [0, 2147483647], got -1"),
    ("--epochs", "0", "must be an integer in [1, 10000], got 0"),
    ("--batch-size", "0", "must be an integer in [1, 4096], got 0"),
    ("--warmup-steps", "-1", "must be an integer in [0, 10000], got -1"),
    ("--target-accuracy", "2", "must be a number in (0, 1], got 2"),
    ("--target-accuracy", "0", "must be a number in (0, 1], got 0"),
    ("--timeout", "0", "must be a number in (0, 604800], got 0"),
    ("--lr", "-0.1", "must be a number in (0, 10], got -0.1"),
    ("--lr", "nan", "must be a number in (0, 10], got nan"),
    ("--scratch-lr", "0", "must be a number in (0, 10], got 0"),
    ("--momentum", "1", "must be a number in [0, 1), got 1"),
    ("--weight-decay", "-0.0001", "must be a number in [0, 1], got -0.0001"),
    ("--val-fraction", "1", "must be a number in (0, 1), got 1"),
    ("--image-size", "0", "must be an integer in [1, 4096], got 0"),
    ("--max-retries", "-1", "must be an integer in [0, 10], got -1"),
])
def test_bad_numbers_are_refused_by_name(tmp_path, capsys, option, value, expected):
    with pytest.raises(SystemExit) as e:
        main(_run(tmp_path, option, value))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and expected in err
    assert not (tmp_path / "out").exists()


def test_image_size_below_the_architectures_minimum(tmp_path, capsys):
    assert main(_run(tmp_path, "--image-size", "7")) == 2
    err = capsys.readouterr().err
    assert "--image-size 7 is below resnet18's minimum of 32 px with the imagenet stem" in err
    assert "--stem cifar allows 8 px" in err and not (tmp_path / "out").exists()
    assert main(_run(tmp_path, "--model", "efficientnet_lite0", "--image-size", "16")) == 2
    assert "efficientnet_lite0's minimum of 32 px" in capsys.readouterr().err


def test_stem_the_architecture_lacks(tmp_path, capsys):
    assert main(_run(tmp_path, "--model", "densenet121", "--stem", "cifar")) == 2
    assert "--stem cifar is not defined for densenet121" in capsys.readouterr().err


def test_overhead_and_tune_options_are_checked(capsys):
    for argv in (["overhead", "--steps", "1"], ["overhead", "--rounds", "0"], ["tune", "--image-size", "x"],
                 ["overhead", "--set", "NOVALUE"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "error: argument" in capsys.readouterr().err


def test_internal_commands_are_hidden(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "run" in out and "overhead" in out and "_exec" not in out and "_step" not in out
