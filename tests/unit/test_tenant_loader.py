"""Tenant YAML: a valid folder loads; every kind of mistake is reported with its file, the path
inside the file and what was found, all of them in one run, and nothing is loaded."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from cc_core.errors import ConfigError
from cc_core.tenants.loader import canonical_yaml, load_path
from cc_core.tenants.model import Destination, DestinationKind, NumberStatus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tenants" / "acme.yaml"

BETA = """\
tenant: beta
entry: menu:main
numbers:
  "4006660001": {}
prompts: {hi: "tone_stream://%(100,0,440)"}
menus:
  main:
    prompt: [hi]
    options:
      "1": hangup
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_path(path)
    return str(err.value)


def test_a_valid_folder_loads_every_tenant_and_the_global_config(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "acme.yaml")
    write(tmp_path, "beta.yml", BETA)
    write(tmp_path, "_global.yaml", "blacklist: {numbers: ['13000000001']}\n")
    write(tmp_path, ".beta.yaml.swp", "not yaml: [")  # an editor's file is not read
    cfg = load_path(tmp_path)
    assert sorted(cfg.tenants) == ["acme", "beta"]
    assert cfg.sources == {"acme": tmp_path / "acme.yaml", "beta": tmp_path / "beta.yml"}
    assert cfg.complete and cfg.global_source == tmp_path / "_global.yaml"
    assert cfg.global_config.blacklist.numbers == ["13000000001"]
    acme = cfg.tenants["acme"]
    assert acme.numbers["4008009999"].status is NumberStatus.SUSPENDED
    assert acme.menus["main"].options["1"] == Destination(kind=DestinationKind.MENU,
                                                          target="sales")


def test_a_single_file_may_have_any_name_and_is_not_the_whole_config(tmp_path: Path) -> None:
    cfg = load_path(write(tmp_path, "draft-of-beta.yaml", BETA))
    assert list(cfg.tenants) == ["beta"] and not cfg.complete and cfg.global_source is None


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", "tenant: beta\nentry: hangup\n  numbers: {}\n")
    text = problems(tmp_path)
    assert f"{tmp_path / 'beta.yaml'}: line 3, column 10: not valid YAML" in text


def test_a_key_written_twice_is_refused_not_silently_overridden(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA.replace('      "1": hangup\n',
                                              '      "1": hangup\n      "1": menu:main\n'))
    text = problems(tmp_path)
    assert "beta.yaml: line 11, column 7" in text
    assert "found the key '1' a second time (first on line 10)" in text


def test_unknown_key_is_reported_at_its_path_with_a_suggestion(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA.replace("    prompt: [hi]\n",
                                              "    prompt: [hi]\n    timout_ms: 3000\n"))
    text = problems(tmp_path)
    assert "beta.yaml: at menus.main.timout_ms: unknown key 'timout_ms'; " \
           "did you mean 'timeout_ms'?" in text


def test_bad_destination_is_reported_at_the_menu_option(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA.replace('"1": hangup', '"7": queue'))
    text = problems(tmp_path)
    assert "beta.yaml: at menus.main.options.7: 'queue': queue needs a target" in text
    assert "(got 'queue')" in text


def test_bad_option_key_is_reported_at_the_key(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA.replace('"1": hangup', '"77": hangup'))
    text = problems(tmp_path)
    assert "beta.yaml: at menus.main.options.77: option key '77' must be one DTMF key" in text


def test_unquoted_bad_number_is_reported_at_the_number(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA.replace('"4006660001"', "4006"))
    assert "beta.yaml: at numbers.4006: 4006 is not a 400 number" in problems(tmp_path)


def test_unknown_destination_kind_says_which_kinds_exist(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA.replace('"1": hangup', '"2": mneu:main'))
    text = problems(tmp_path)
    assert "at menus.main.options.2: 'mneu:main' is not a destination" in text
    assert "menu, queue, transfer" in text


def test_dangling_menu_and_prompt_references_name_their_paths(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA.replace('"1": hangup', '"5": menu:sales')
          .replace("prompt: [hi]", "prompt: [hi, welcome]"))
    text = problems(tmp_path)
    assert "beta.yaml: at menus.main.options.5: menu:sales names no menu (defined: main)" in text
    assert "beta.yaml: at menus.main: prompt 'welcome' is not in prompts (defined: hi)" in text


def test_bad_400_number_is_reported_at_the_number(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA.replace('"4006660001"', '"40066600"'))
    text = problems(tmp_path)
    assert "beta.yaml: at numbers.40066600: '40066600' is not a 400 number" in text
    assert "(got '40066600')" in text


def test_bad_time_interval_is_reported_at_the_interval(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA + "hours:\n  weekly:\n    mon: ['09:00-12:00', "
                                        "'18:00-09:00']\n")
    text = problems(tmp_path)
    assert "beta.yaml: at hours.weekly.mon.1: '18:00-09:00': the start must come before " \
           "the end" in text


def test_bad_value_type_shows_what_was_found(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA + "agents:\n  a: {contact: user/1}\nqueues:\n  q: {tiers: [{agent: a}], ring_timeout_s: 2}\n")
    text = problems(tmp_path)
    assert "at queues.q.ring_timeout_s: Input should be greater than or equal to 5" in text
    assert "(got 2)" in text


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA.replace("entry: menu:main\n", ""))
    assert "beta.yaml: at entry: required key is missing" in problems(tmp_path)


def test_a_number_in_two_tenants_names_both_files(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "acme.yaml")
    write(tmp_path, "beta.yaml", BETA.replace('"4006660001"', '"4008001234"'))
    text = problems(tmp_path)
    assert (f"{tmp_path / 'beta.yaml'}: at numbers.4008001234: 4008001234 also belongs to "
            f"tenant 'acme' in {tmp_path / 'acme.yaml'}") in text


def test_a_tenant_in_a_file_of_another_name_is_refused_in_a_folder(tmp_path: Path) -> None:
    write(tmp_path, "gamma.yaml", BETA)
    text = problems(tmp_path)
    assert "gamma.yaml: at tenant: a tenant file in a folder is named after its tenant: " \
           "rename the file to beta.yaml or write tenant: gamma" in text


def test_a_tenant_id_used_twice_names_both_files(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA)
    write(tmp_path, "beta.yml", BETA.replace('"4006660001"', '"4006660002"'))
    text = problems(tmp_path)
    assert f"beta.yml: at tenant: tenant 'beta' is also defined in {tmp_path / 'beta.yaml'}" \
        in text


def test_every_problem_in_every_file_is_reported_and_nothing_loaded(tmp_path: Path) -> None:
    write(tmp_path, "beta.yaml", BETA.replace('"1": hangup', '"7": queue'))
    write(tmp_path, "gamma.yaml", "tenant: gamma\nentry: hangup\nnumbers: {'4001': {}}\n")
    write(tmp_path, "delta.yaml", "tenant: [\n")
    write(tmp_path, "_global.yaml", "blacklist: {numbrs: []}\n")
    text = problems(tmp_path)
    assert text.startswith(f"4 problems in {tmp_path}; nothing was loaded:")
    for where in ("beta.yaml: at menus.main.options.7", "gamma.yaml: at numbers.4001",
                  "delta.yaml: line 2, column 1", "_global.yaml: at blacklist.numbrs"):
        assert where in text


@pytest.mark.parametrize("content, expected", [
    ("", "the file is empty"),
    ("- a\n- b\n", "the top level must be a mapping (key: value), got list"),
])
def test_a_file_that_is_not_a_tenant_says_so(tmp_path: Path, content: str, expected: str) -> None:
    write(tmp_path, "beta.yaml", content)
    assert f"beta.yaml: {expected}" in problems(tmp_path)


def test_an_empty_folder_or_a_missing_path_is_explained(tmp_path: Path) -> None:
    assert "no tenant files (*.yaml, *.yml) in this folder" in problems(tmp_path)
    assert "no such file or folder" in problems(tmp_path / "nope")


def test_canonical_yaml_reads_like_a_tenant_file_and_loads_back_the_same(tmp_path: Path) -> None:
    tenant = load_path(EXAMPLE).tenants["acme"]
    text = canonical_yaml(tenant)
    assert text.startswith("tenant: acme\n")
    assert "entry: menu:main\n" in text and "      '9': hangup\n" in text
    again = load_path(write(tmp_path, "acme.yaml", text)).tenants["acme"]
    assert again == tenant
    # The same meaning written in another key order gives the same text.
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    shuffled = dict(reversed(list(data.items())))
    shuffled["menus"] = dict(reversed(list(data["menus"].items())))
    path = tmp_path / "shuffled.yaml"
    path.write_text(yaml.safe_dump(shuffled, allow_unicode=True), encoding="utf-8")
    assert canonical_yaml(load_path(path).tenants["acme"]) == text
