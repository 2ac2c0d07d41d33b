"""A failing reading through the real broker reaches every configured group bot, in its own
format, signed where the platform asks; a bot that is down holds nothing else up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Publisher, wait_for
from tests.test_webhooks import DING_SECRET, DING_TOKEN, FEISHU_SECRET, WECOM_KEY, Receiver

SITE = """
[site]
name = "webhook park"

[[assets]]
id = "FE-WH"
name = "1号楼灭火器"
category = "fire"
kind = "fire_extinguisher"
device = "ext-wh"
location = "1号楼大堂"
"""


@pytest.fixture
def bots() -> Iterator[Receiver]:
    """Stand-ins for the WeCom, DingTalk and Feishu robots (checking signatures as they do) and a JSON hook."""
    r = Receiver()
    yield r
    r.close()


def test_a_ticket_reaches_every_bot_in_its_format(gateway_factory, publisher: Publisher, bots: Receiver,
                                                 tmp_path: Path):
    receiver = bots
    (tmp_path / "site.toml").write_text(SITE)
    base = receiver.base
    (tmp_path / "gateway.toml").write_text(f"""
[[webhooks]]
name = "ops-json"
url = "{base}/json"
events = ["ticket.*"]

[[webhooks]]
name = "maint-dingtalk"
url = "{base}/dingtalk/robot/send?access_token={DING_TOKEN}"
format = "dingtalk"
secret = "{DING_SECRET}"
events = ["ticket.opened"]

[[webhooks]]
name = "maint-wecom"
url = "{base}/wecom/cgi-bin/webhook/send?key={WECOM_KEY}"
format = "wecom"

[[webhooks]]
name = "maint-feishu"
url = "{base}/feishu/open-apis/bot/v2/hook/abc123"
format = "feishu"
secret = "{FEISHU_SECRET}"

[[webhooks]]
name = "down"
url = "http://127.0.0.1:9/nothing-listens-here"
retry_min_s = 0.05
""")
    g = gateway_factory(config=tmp_path / "gateway.toml", GATEWAY_SITE_FILE=str(tmp_path / "site.toml")).start()
    now = time.time()
    for i, ts in enumerate((now - 61, now)):
        publisher.send("fm/t/fire_extinguisher/ext-wh/reading", {"ts": ts, "seq": i, "pressure_mpa": 0.5})

    wait_for(lambda: receiver.at("/json"), what="the JSON hook")
    opened = receiver.at("/json")[0].body
    assert opened["type"] == "ticket.opened"
    assert opened["data"]["ticket"]["asset"] == "FE-WH" and opened["data"]["ticket"]["priority"] == "emergency"
    assert "急修" in opened["title"] and "1号楼灭火器" in opened["title"]

    wait_for(lambda: receiver.at("/dingtalk/robot/send"), what="the DingTalk hook")
    ding = receiver.at("/dingtalk/robot/send")[0]
    assert receiver.dingtalk_check(ding) == {"errcode": 0, "errmsg": "ok"}, "DingTalk would refuse the signature"
    assert ding.body["msgtype"] == "markdown" and "1号楼灭火器" in ding.body["markdown"]["title"]

    wait_for(lambda: receiver.at("/wecom/cgi-bin/webhook/send"), what="the WeCom hook")
    assert receiver.at("/wecom/cgi-bin/webhook/send")[0].body["msgtype"] == "markdown"
    wait_for(lambda: receiver.at("/feishu/open-apis/bot/v2/hook/abc123"), what="the Feishu hook")
    assert receiver.feishu_check(receiver.at("/feishu/open-apis/bot/v2/hook/abc123")[0])["code"] == 0

    status = {h["name"]: h for h in g.get("/api/v1/webhooks", g.token)["items"]}
    assert status["maint-dingtalk"]["last_error"] is None and status["down"]["last_error"]
    deliveries = g.get("/api/v1/webhooks/deliveries?hook=down", g.token)["items"]
    assert deliveries and not deliveries[0]["ok"]
    text = json.dumps(g.get("/api/v1/webhooks", g.token)) + g.log()
    for secret in (DING_SECRET, FEISHU_SECRET, WECOM_KEY, DING_TOKEN):
        assert secret not in text
    assert g.stop() == 0
