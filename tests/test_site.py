"""The site file: assets, the devices bound to them, checkpoints; every problem listed at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError
from gateway.site import Binding, Site, load_site

GOOD = """
[site]
name = "Riverside Gardens"
timezone = "Asia/Shanghai"
latitude = 31.23
longitude = 121.47

[[assets]]
id = "L-001"
name = "Lamp at gate 1"
category = "lighting"
kind = "streetlight"
device = "lamp-1"
rated = { current_a = 0.4 }
thresholds = { min_current_a = 0.1 }

[[assets]]
id = "FE-B2-03"
category = "fire"
kind = "fire_extinguisher"
device = "ext-4"

[[assets]]
id = "RW-7"
category = "drainage"

[[checkpoints]]
id = "cp-gate"
tag = "04:a2:24:b2:c1:5e:80"

[[checkpoints]]
id = "cp-ext"
tag = "0511"
asset = "FE-B2-03"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_site(path)
    return info.value.problems


def test_good_site(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, GOOD))
    assert site.info.name == "Riverside Gardens"
    assert site.info.timezone == "Asia/Shanghai"
    assert [a.id for a in site.assets] == ["L-001", "FE-B2-03", "RW-7"]
    assert site.assets[0].rated == {"current_a": 0.4}
    assert site.bindings == {"lamp-1": Binding("L-001", "lighting"), "ext-4": Binding("FE-B2-03", "fire")}
    assert site.tags == {"04A224B2C15E80": "cp-gate", "0511": "cp-ext"}
    assert site.checkpoints[1].asset == "FE-B2-03"


def test_no_site_file_is_an_empty_site() -> None:
    site = load_site(None)
    assert site == Site.empty()
    assert (site.assets, site.checkpoints, site.bindings, site.tags) == ((), (), {}, {})
    assert site.info.timezone == "Asia/Shanghai"


def test_missing_and_unreadable_site_files(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope.toml") == [f"{tmp_path / 'nope.toml'}: no such site file"]
    [line] = problems_of(write(tmp_path, "[[assets]\n"))
    assert "not valid TOML" in line


ASSET_LAMP = '[[assets]]\nid = "L-001"\ncategory = "lighting"\nkind = "streetlight"\ndevice = "lamp-1"\n'

SINGLE_PROBLEMS = [
    pytest.param(ASSET_LAMP + ASSET_LAMP.replace("lamp-1", "lamp-2"), "asset id 'L-001' appears 2 times",
                 id="duplicate-asset-id"),
    pytest.param(ASSET_LAMP + ASSET_LAMP.replace("L-001", "L-002"), "device 'lamp-1' appears 2 times",
                 id="device-bound-twice"),
    pytest.param('[[assets]]\nid = "P-1"\ncategory = "parking"\n', "assets.0.category: unknown category",
                 id="unknown-category"),
    pytest.param('[[assets]]\nid = "FE-1"\ncategory = "drainage"\nkind = "fire_extinguisher"\n',
                 "assets.0.kind: a fire_extinguisher reports for category 'fire', not 'drainage'",
                 id="kind-category-mismatch"),
    pytest.param('[[assets]]\nid = "X-1"\ncategory = "fire"\nkind = "checkpoint"\n',
                 "assets.0.kind: unknown sensor kind", id="checkpoint-is-not-an-asset-kind"),
    pytest.param('[site]\ntimezone = "Mars/Olympus"\n', "site.timezone: unknown time zone 'Mars/Olympus'",
                 id="bad-timezone"),
    pytest.param('[[checkpoints]]\nid = "cp-1"\ntag = "04G2"\n', "checkpoints.0.tag: tag '04G2' is not a hex",
                 id="bad-checkpoint-tag"),
    pytest.param('[[checkpoints]]\nid = "cp-1"\ntag = "04A2"\n[[checkpoints]]\nid = "cp-2"\ntag = "04:a2"\n',
                 "checkpoint tag '04A2' appears 2 times", id="same-tag-twice-after-normalizing"),
    pytest.param('[[checkpoints]]\nid = "cp-1"\ntag = "04A2"\nasset = "NOPE"\n',
                 "checkpoints.0.asset: no asset 'NOPE' in this file", id="checkpoint-unknown-asset"),
    pytest.param('[[assets]]\nid = "L 1"\ncategory = "lighting"\n', "assets.0.id: ", id="asset-id-not-a-segment"),
    pytest.param('[[assets]]\nid = "L-1"\ncategory = "lighting"\ndevice = "lamp-1\\n"\n', "assets.0.device: ",
                 id="device-with-trailing-newline"),
    pytest.param('[[assets]]\nid = "L-1"\ncategory = "lighting"\ncolour = "red"\n', "assets.0.colour: unknown key",
                 id="unknown-key"),
    pytest.param('[[assets]]\nid = "L-1"\ncategory = "lighting"\nthresholds = { min_current_a = "low" }\n',
                 "assets.0.thresholds.min_current_a: ", id="threshold-not-a-number"),
    pytest.param('[[assets]]\nid = "L-1"\ncategory = "lighting"\nthresholds = { current_a_min = 0.1 }\n',
                 "assets.0.thresholds.current_a_min: unknown for lighting (known: current_a, min_current_a",
                 id="unknown-threshold"),
    pytest.param('[[assets]]\nid = "W-1"\ncategory = "drainage"\nkind = "drain_level"\nrated = { depth = 2 }\n',
                 "assets.0.rated.depth: unknown for drain_level (known: alarm_level_m, depth_m", id="unknown-rated"),
    pytest.param('[[assets]]\nid = "L-1"\ncategory = "lighting"\nschedule = "dusk-dawn"\n',
                 "assets.0.schedule: ", id="bad-schedule"),
    pytest.param('[faults.lamp_gone]\npriority = "urgent"\n', "faults.lamp_gone: unknown fault", id="unknown-fault"),
    pytest.param('[faults.lamp_out]\npriority = "asap"\n', "faults.lamp_out.priority: ", id="unknown-priority"),
    pytest.param('[sla.critical]\nrespond_min = 5\n', "sla.critical: unknown priority", id="sla-unknown-priority"),
    pytest.param('[sla.urgent]\nrespond_min = -5\n', "sla.urgent.respond_min: ", id="sla-negative"),
]


@pytest.mark.parametrize(("text", "words"), SINGLE_PROBLEMS)
def test_one_problem(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    [line] = problems_of(path)
    assert line.startswith(f"{path}: "), line
    assert words in line


def test_all_problems_listed_together(tmp_path: Path) -> None:
    path = write(tmp_path, """
[site]
timezone = "Mars/Olympus"

[[assets]]
id = "L-001"
category = "lighting"
kind = "streetlight"
device = "lamp-1"

[[assets]]
id = "L-001"
category = "lighting"
device = "lamp-1"

[[assets]]
id = "P-1"
category = "parking"

[[assets]]
id = "FE-1"
category = "drainage"
kind = "fire_extinguisher"

[[checkpoints]]
id = "cp-1"
tag = "04G2"

[[checkpoints]]
id = "cp-2"
tag = "04A2"
asset = "NOPE"
""")
    problems = problems_of(path)
    expected = [
        "site.timezone: unknown time zone",
        "asset id 'L-001' appears 2 times",
        "device 'lamp-1' appears 2 times",
        "assets.2.category: unknown category",
        "assets.3.kind: a fire_extinguisher reports for category 'fire'",
        "checkpoints.0.tag: ",
        "checkpoints.1.asset: no asset 'NOPE'",
    ]
    for words in expected:
        assert [p for p in problems if words in p], f"{words!r} not reported in {problems}"
    assert len(problems) == len(expected), problems


def test_a_bad_value_in_one_section_does_not_hide_the_cross_checks(tmp_path: Path) -> None:
    """Removing the invalid priority leaves a fault override without one: the checks of the rest still run."""
    path = write(tmp_path, """
[faults.lamp_out]
priority = "asap"

[[assets]]
id = "L-1"
category = "lighting"
thresholds = { bogus = 1 }

[[assets]]
id = "L-1"
category = "lighting"
""")
    problems = problems_of(path)
    assert len(problems) == 3, problems
    assert any("faults.lamp_out.priority" in p for p in problems)
    assert any("asset id 'L-1' appears 2 times" in p for p in problems)
    assert any("assets.0.thresholds.bogus: unknown" in p for p in problems)
