"""A strategy's own options: declared as a dataclass, read from the config, checked."""

from __future__ import annotations

import pytest

from mbnas.errors import ConfigError
from mbnas.strategies import DEFAULT_STRATEGY, make_strategy, strategy_definition
from mbnas.strategies.options import options_dict, parse_assignments
from mbnas.strategies.registry import default_strategy, strategy_options
from mbnas.testing.toy_space import ToyGenotype, ToySpace

decode = ToyGenotype.from_dict
RANDOM = "random"


def test_an_option_from_the_config_reaches_the_strategy() -> None:
    space = ToySpace("toy", 3)
    strategy = make_strategy(RANDOM, space, rng=0, decode=decode, options={"batch_size": 4})
    assert len(strategy.ask()) == 4
    # given as text (--strategy-option batch_size=2): converted to the field's type
    strategy = make_strategy(RANDOM, space, rng=0, decode=decode,
                             options=parse_assignments(["batch_size=2"]))
    assert len(strategy.ask()) == 2
    assert len(make_strategy(RANDOM, space, rng=0, decode=decode).ask()) == 1  # default


@pytest.mark.parametrize(("options", "message"), [
    ({"batch_sise": 4}, "unknown option 'batch_sise' of the random strategy; options: "
                        "batch_size"),
    ({"batch_size": "four"}, "random option batch_size must be int, got 'four'"),
    ({"batch_size": 2.5}, "random option batch_size must be int, got 2.5"),
    ({"batch_size": True}, "random option batch_size must be int, got True"),
])
def test_an_unknown_option_or_a_wrong_type_is_refused_in_one_line(options, message) -> None:
    with pytest.raises(ConfigError) as info:
        strategy_options(RANDOM, options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_options_for_a_strategy_without_any_are_refused() -> None:
    assert strategy_definition(DEFAULT_STRATEGY).options is None
    with pytest.raises(ConfigError, match="takes no options"):
        make_strategy(DEFAULT_STRATEGY, ToySpace("toy", 3), rng=0, decode=decode,
                      options={"population": 8})
    assert strategy_options(DEFAULT_STRATEGY, {}) is None


def test_saved_options_are_the_given_keys_with_typed_values() -> None:
    given = {"batch_size": "3"}
    assert options_dict(strategy_options(RANDOM, given), given) == {"batch_size": 3}
    assert options_dict(None, {}) == {}


@pytest.mark.parametrize("pair", ["batch_size", "=3", ""])
def test_a_command_line_option_without_key_and_value_is_refused(pair: str) -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments([pair])


def test_the_default_strategy_is_named_not_positional() -> None:
    assert default_strategy() == DEFAULT_STRATEGY
    assert strategy_definition(DEFAULT_STRATEGY).costs  # the paper's search takes costs


def test_the_command_line_and_the_config_file_reach_config_yaml(phantom_spleen, tmp_path,
                                                                 capsys) -> None:
    import yaml

    from mbnas.cli import main

    config_file = tmp_path / "search.yaml"
    config_file.write_text("strategy: random\nstrategy_options: {batch_size: 2}\n")
    base = ["search", str(phantom_spleen), "--out", str(tmp_path / "run"), "--dry-run",
            "--protocol", "quick", "--config", str(config_file)]
    assert main(base) == 0
    saved = yaml.safe_load(capsys.readouterr().out.split("protocol key")[0])
    assert saved["strategy_options"] == {"batch_size": 2}
    assert main([*base, "--strategy-option", "batch_size=3"]) == 0  # the flag wins
    saved = yaml.safe_load(capsys.readouterr().out.split("protocol key")[0])
    assert saved["strategy_options"] == {"batch_size": 3}
    assert main([*base[:-2], "--strategy", "local"]) == 0  # none given: no key at all
    assert "strategy_options" not in capsys.readouterr().out
    for bad, message in ((["--strategy-option", "batch_sise=3"], "unknown option"),
                         (["--strategy-option", "batch_size=x"], "must be int"),
                         (["--objectives", "dice,macs", "--strategy", "bilevel", "--space",
                           "macro"], "not supported with the bilevel strategy")):
        assert main([*base, *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_the_recipe_strategy_gets_its_options(plugin) -> None:
    from mbnas.strategies import STRATEGIES, strategy_names

    built_in = strategy_names()
    plugin.recipe("A search strategy", STRATEGIES)
    (name,) = (n for n in strategy_names() if n not in built_in)
    space = ToySpace("toy", 3)
    assert make_strategy(name, space, rng=0, decode=decode).max_retries == 100
    chosen = make_strategy(name, space, rng=0, decode=decode, options={"max_retries": "7"})
    assert chosen.max_retries == 7
    with pytest.raises(ConfigError, match="unknown option 'population'"):
        make_strategy(name, space, rng=0, decode=decode, options={"population": 8})
