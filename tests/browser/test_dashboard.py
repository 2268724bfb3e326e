"""The dashboard end to end in headless chromium: charts with data, brand switch, a live update over SSE."""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from playwright.sync_api import expect
from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from monitor.alerts.tables import alert_event
from monitor.store.db import post_sentiment
from schemas import Label
from tests.browser.conftest import READ_TOKEN, sample_results

pytestmark = pytest.mark.browser

SEED = sample_results(90, "seed")
SEED_VOLUME = Counter(r.brands[0] for r in SEED)


def wait_stored(pipeline, expected: int, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while pipeline.stored() < expected:
        assert time.monotonic() < deadline, f"only {pipeline.stored()} of {expected} results stored"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def seeded(pipeline):
    pipeline.produce(SEED)
    wait_stored(pipeline, len(SEED))
    return pipeline


def chart_total(page) -> int:
    return int(page.get_attribute("#trend-chart", "data-total-volume") or 0)


def open_dashboard(page, base_url: str) -> None:
    page.goto(f"{base_url}/?token={READ_TOKEN}")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)


def test_charts_render_with_data_and_brand_switch(page, seeded):
    open_dashboard(page, seeded.base_url)
    assert "token=" not in page.url  # taken into sessionStorage and out of the address bar

    first = sorted(SEED_VOLUME)[0]
    expect(page.locator("#trend-chart")).to_have_attribute("data-brand", first)
    expect(page.locator("#trend-chart")).to_have_attribute("data-total-volume", str(SEED_VOLUME[first]))
    bars = page.evaluate("Chart.getChart('trend-chart').data.datasets.map(d => d.data.length)")
    assert all(n > 0 for n in bars)  # three stacked series and the net-sentiment line have points
    expect(page.locator("#sov-chart")).to_have_attribute("data-brands", "acme,globex,initech")
    assert page.locator("#compare-table tbody tr").count() == 3
    assert page.locator("#posts li[data-post-id]").count() > 0
    assert page.locator("#posts .badge").first.inner_text() in ("negative", "neutral", "positive")
    expect(page.locator("#live")).to_have_text("live")

    page.select_option("#brand", "initech")
    expect(page.locator("#trend-chart")).to_have_attribute("data-brand", "initech")
    expect(page.locator("#trend-chart")).to_have_attribute("data-total-volume", str(SEED_VOLUME["initech"]))
    assert page.locator("#brand-title").inner_text() == "initech"
    assert page.errors == []


def test_inline_images_show_their_thumbnails(page, seeded):
    """Fetched with the read token (an <img> could not send it) and shown from a blob: URL."""
    open_dashboard(page, seeded.base_url)
    page.wait_for_function("() => { const imgs = [...document.querySelectorAll('#posts img.thumb')];"
                           " return imgs.length > 0 && imgs.every(i => i.src.startsWith('blob:') && i.complete); }")
    sizes = page.eval_on_selector_all("#posts img.thumb[src^='blob:']",
                                      "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    shown = page.locator("#posts li[data-post-id]").evaluate_all(
        "items => items.filter(li => li.dataset.postId.split('-').pop() % 3 === 0).length")
    assert len(sizes) == shown > 0  # every post with an inline image, and only those
    assert all(size == [True, 32, 24] for size in sizes)
    assert page.errors == []


def test_why_highlights_the_words_of_a_post(page, seeded):
    """"why?" fetches the post's explanation and highlights its words; a post with an image also gets the text's
    and the image's own labels."""
    open_dashboard(page, seeded.base_url)
    posts = {r.post_id: r for r in SEED}
    with_image = page.locator("#posts li[data-post-id]").evaluate_all(
        "items => items.map(li => li.dataset.postId).filter(id => id.split('-').pop() % 3 === 0)")
    assert with_image
    item = page.locator(f"#posts li[data-post-id='{with_image[0]}']")
    item.locator("button.why-button").click()
    words = item.locator(".explanation .explained-text .word")
    expect(words.first).to_be_visible(timeout=30_000)
    assert words.all_inner_texts() == posts[with_image[0]].text.split()
    attributions = [float(a) for a in words.evaluate_all("spans => spans.map(s => s.dataset.attribution)")]
    assert max(abs(a) for a in attributions) == pytest.approx(1.0, abs=1e-3)
    assert all(w.get_attribute("title") for w in words.all())
    expect(item.locator(".explanation .modality")).to_contain_text("text says")
    expect(item.locator(".explanation .modality")).to_contain_text("image says")
    item.locator("button.why-button").click()  # closes it again
    expect(item.locator(".explanation .word")).to_have_count(0)
    assert page.errors == []


def test_live_update_arrives_after_new_results(page, seeded):
    open_dashboard(page, seeded.base_url)
    page.select_option("#brand", "globex")
    expect(page.locator("#trend-chart")).to_have_attribute("data-brand", "globex")
    page.wait_for_selector("#live.on")
    before = chart_total(page)

    fresh = sample_results(7, "live", brands=["globex"], seed=9, minutes_back=0.5)
    seeded.produce(fresh)
    # No reload and no polling of trends: only the SSE announcement makes the page refetch.
    expect(page.locator("#trend-chart")).to_have_attribute("data-total-volume", str(before + len(fresh)),
                                                           timeout=60_000)
    assert int(page.locator("#live-count").inner_text()) >= 1
    assert page.errors == []


def test_languages_left_out_of_the_trends_are_shown_apart(page, seeded):
    german = [r.model_copy(update={"language": "de", "language_supported": False})
              for r in sample_results(4, "german", brands=["initech"], seed=11, minutes_back=5)]
    before = seeded.stored()
    seeded.produce(german)
    wait_stored(seeded, before + len(german))
    open_dashboard(page, seeded.base_url)
    page.select_option("#brand", "initech")
    expect(page.locator("#language-table tr[data-language=de]")).to_have_class("unsupported")
    row = page.locator("#language-table tr[data-language=de] td")
    assert row.nth(1).inner_text() == str(len(german))
    expect(page.locator("#language-meta")).to_contain_text(f"{len(german)} of ")
    # The trend chart still counts supported posts only (waited for: the chart reloads apart from the table).
    expect(page.locator("#trend-chart")).to_have_attribute("data-total-volume", str(SEED_VOLUME["initech"]))
    assert page.errors == []


def test_shadow_challenger_agreement_is_shown(page, seeded):
    """A challenger's results arrive on their own topic, are stored apart by the sink, and the Models card shows
    its agreement with the champion and the confusion between their labels."""
    champion = sample_results(6, "shadowed", brands=["initech"], seed=5, minutes_back=5)
    before = seeded.stored()
    seeded.produce(champion)
    wait_stored(seeded, before + len(champion))
    flipped = {"positive": "negative", "negative": "positive", "neutral": "neutral"}
    challenger = [r.model_copy(update={"model_version": "challenger@0123456789ab",
                                       "label": Label(flipped[r.label.value]) if i < 2 else r.label})
                  for i, r in enumerate(champion)]
    seeded.produce(challenger, topic="sentiment.shadow")
    open_dashboard(page, seeded.base_url)
    card = page.locator('#shadow [data-challenger="challenger@0123456789ab"]')
    deadline = time.monotonic() + 60
    while "of 6 posts" not in (card.inner_text() if card.count() else ""):  # the sink stores them, the card polls
        assert time.monotonic() < deadline, "the challenger's agreement never showed"
        page.evaluate("loadModels()")
        time.sleep(0.5)
    agreeing = sum(r.label == c.label for r, c in zip(champion, challenger, strict=True))
    expect(card).to_contain_text(f"agrees on {agreeing / 6 * 100:.1f} % of 6 posts")
    cells = card.locator("table.confusion td.agree")
    assert sum(int(cells.nth(i).inner_text()) for i in range(3)) == agreeing
    expect(page.locator('#model-table tr[data-model="test"]')).to_be_visible()  # the champion's id in the seed
    assert page.errors == []


def test_keyphrases_per_sentiment_lead_to_their_posts(page, seeded):
    """The sink's keyphrase pass counts the seeded posts' terms; the card lists them per sentiment, and a click
    searches the posts for one."""
    open_dashboard(page, seeded.base_url)
    page.select_option("#brand", "initech")
    negative = page.locator('#keyphrases [data-label=negative] li[data-phrase="terrible"]')
    deadline = time.monotonic() + 60
    while not negative.count():  # the pass runs every second; the card reloads on demand here
        assert time.monotonic() < deadline, "no keyphrase arrived"
        page.evaluate("loadKeyphrases()")
        time.sleep(0.5)
    assert page.locator('#keyphrases [data-label=positive] li[data-phrase="love"]').count() == 1
    assert not page.locator('#keyphrases li[data-phrase*="initech"]').count()  # the brand's own name is left out
    negative.locator("button").click()
    expect(page.locator("#posts-scope")).to_contain_text("terrible")  # the list was reloaded with the search
    expect(page.locator("#posts li[data-post-id]").first).to_be_visible()
    texts = page.locator("#posts li[data-post-id] .post-text").all_inner_texts()
    assert texts and all("terrible" in t for t in texts)
    assert page.errors == []


def test_anomaly_alerts_show_their_why(page, seeded):
    """An anomaly alert as the alert loop stores it: the list shows its z-score, keyphrases and example posts (read
    from the stored posts by id)."""
    negative = next(r for r in SEED if r.label.value == "negative")
    now = datetime.now(UTC)
    details = {"metric": "volume", "z": 6.4, "observed": 42.0, "keyphrases": ["support terrible", "still waiting"],
               "baseline": {"median": 9.0, "mad": 2.0, "scale": 2.97, "scale_from": "mad", "samples": 4,
                            "seasonal": True, "hour_of_week": 33},
               "example_posts": [{"post_id": negative.post_id, "reason": "most_negative"},
                                 {"post_id": "never-stored", "reason": "most_recent"}]}
    with seeded.engine.begin() as conn:
        event_id = conn.execute(alert_event.insert().values(
            brand=negative.brands[0], kind="anomaly", fired_at=now, window_start=now - timedelta(minutes=59),
            window_end=now + timedelta(minutes=1), value=6.4, threshold=4.0, volume=42, details=details,
            message=f"{negative.brands[0]}: volume anomaly, 42 posts in the last hour").returning(alert_event.c.id)
        ).scalar_one()
    open_dashboard(page, seeded.base_url)
    item = page.locator(f"#alerts li[data-alert-id='{event_id}']")
    expect(item.locator(".why .z")).to_have_text("z +6.4")
    expect(item.locator(".why")).to_contain_text("vs median 9 (Tue 09:00 UTC, 4 weeks)")
    assert item.locator(".keyphrases .chip").all_inner_texts() == ["support terrible", "still waiting"]
    examples = item.locator(".examples li")
    assert examples.count() == 1  # the post never stored drops out
    expect(examples.first).to_have_attribute("data-post-id", negative.post_id)
    expect(examples.first).to_contain_text(negative.text)
    assert page.errors == []


def test_without_token_the_page_asks_for_one(page, seeded):
    page.goto(seeded.base_url + "/")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#token", "wrong")
    page.click("#login button")
    expect(page.locator("#login-error")).to_contain_text("refused")
    page.fill("#token", READ_TOKEN)
    page.click("#login button")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#brand option").count() == 3


# The analyst's dashboard: date range and time zone, drill-down from the chart and from alerts, search, pages and
# exports. Tests that add brands come last: the ones above count the seeded three.

def open_in_zone(browser, base_url: str, zone: str = "America/New_York"):
    """A page whose browser runs in `zone`, so "the browser's zone" and UTC differ."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, timezone_id=zone, accept_downloads=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    open_dashboard(page, base_url)
    return page


@pytest.fixture
def zoned(browser, seeded):
    page = open_in_zone(browser, seeded.base_url)
    yield page
    page.context.close()


def post_ids(page) -> list[str]:
    return page.locator("#posts li[data-post-id]").evaluate_all("items => items.map(li => li.dataset.postId)")


def bucket_posts(brand: str, start: datetime, minutes: int = 1) -> set[str]:
    end = start + timedelta(minutes=minutes)
    return {r.post_id for r in SEED if r.brands[0] == brand and start <= r.created_at < end}


def click_bucket(page, index: int) -> None:
    """A real click on the chart, over bucket `index`."""
    page.locator("#trend-chart").scroll_into_view_if_needed()
    box = page.locator("#trend-chart").bounding_box()
    x, y = page.evaluate("i => { const c = Chart.getChart('trend-chart'); const a = c.chartArea; return ["
                         "c.scales.x.getPixelForValue(c.data.datasets[3].data[i].x), (a.top + a.bottom) / 2]; }", index)
    page.mouse.click(box["x"] + x, box["y"] + y)


def test_date_range_and_time_zone_drive_the_cards(zoned):
    page = zoned
    expect(page.locator("#posts li[data-post-id] .meta").first).to_contain_text(" GMT-5")  # New York in winter
    assert page.input_value("#granularity") == "minute"
    assert page.evaluate("Chart.getChart('trend-chart').data.datasets[3].data.some(d => d.y === null)")  # gaps

    page.select_option("#tz", "UTC")
    expect(page.locator("#posts li[data-post-id] .meta").first).to_contain_text(" UTC")
    expect(page.locator("#last-update")).to_contain_text(" UTC")
    assert "time (UTC)" in page.evaluate("Chart.getChart('trend-chart').options.scales.x.title.text")
    ticks = page.evaluate("Chart.getChart('trend-chart').scales.x.ticks.map(t => t.label)")
    assert ticks and all(len(t) == 5 and t[2] in ":-" for t in ticks)  # "14:00", or "12-06" at midnight

    page.click(".range button[data-preset='7d']")
    expect(page.locator("#granularity")).to_have_value("hour")
    expect(page.locator("#trend-chart")).to_have_attribute("data-buckets", "169")  # 7 x 24 and the current hour
    page.click(".range button[data-preset='30d']")
    expect(page.locator("#granularity")).to_have_value("hour")

    now = datetime.now(UTC)
    page.fill("#since", (now - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#until", (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.locator("#until").dispatch_event("change")
    expect(page.locator("#granularity")).to_have_value("day")
    expect(page.locator(".range button.active")).to_have_count(0)
    first = sorted(SEED_VOLUME)[0]
    expect(page.locator("#trend-chart")).to_have_attribute("data-total-volume", str(SEED_VOLUME[first]))

    page.fill("#since", (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))  # UTC: the zone the inputs are in
    page.locator("#since").dispatch_event("change")
    expect(page.locator("#granularity")).to_have_value("minute")
    expect(page.locator("#posts-scope")).to_contain_text((now - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M UTC"))
    assert page.errors == []


def test_a_chart_point_shows_the_posts_of_its_bucket(page, seeded):
    open_dashboard(page, seeded.base_url)
    brand = sorted(SEED_VOLUME)[0]
    # The seed's 30 minutes only: over 24 h a minute bucket is under a pixel wide, and a click may land on its
    # empty neighbour.
    since = datetime.now(UTC) - timedelta(minutes=30)
    page.fill("#since", since.strftime("%Y-%m-%dT%H:%M"))  # UTC: the zone the inputs are in
    page.locator("#since").dispatch_event("change")
    deadline = time.monotonic() + 20
    while page.evaluate("state.timeline ? state.timeline.length : 0") > 32:  # the chart redrawn for the range
        assert time.monotonic() < deadline, "the chart kept the 24 h range"
        time.sleep(0.1)
    index = page.evaluate("state.timeline.reduce((best, s, i, all) => "
                          "(s.p?.volume || 0) > (all[best].p?.volume || 0) ? i : best, 0)")
    start = datetime.fromtimestamp(page.evaluate(f"state.timeline[{index}].t") / 1000, UTC)
    click_bucket(page, index)
    expect(page.locator("#posts-scope")).to_contain_text("Posts of the minute from")
    expect(page.locator("#posts-clear")).to_be_visible()
    expected = bucket_posts(brand, start)
    expect(page.locator("#posts li[data-post-id]")).to_have_count(min(len(expected), 12))
    assert set(post_ids(page)) <= expected and expected

    page.click("#posts-clear")
    expect(page.locator("#posts-clear")).to_be_hidden()
    expect(page.locator("#posts li[data-post-id]")).to_have_count(12)
    assert page.errors == []


def test_search_filters_and_load_more(page, seeded):
    open_dashboard(page, seeded.base_url)
    brand = sorted(SEED_VOLUME)[0]
    ids = post_ids(page)
    expect(page.locator("#load-more")).to_be_visible()
    page.click("#load-more")
    expect(page.locator("#posts li[data-post-id]")).to_have_count(min(24, SEED_VOLUME[brand]))
    more = post_ids(page)
    assert more[:12] == ids and len(set(more)) == len(more)  # the next page appended, none twice

    page.fill("#post-search", "terrible")
    page.press("#post-search", "Enter")
    expect(page.locator("#posts-scope")).to_contain_text('"terrible"')
    negatives = {r.post_id for r in SEED if r.brands[0] == brand and r.label.value == "negative"}
    expect(page.locator("#posts li[data-post-id]")).to_have_count(min(len(negatives), 12))
    assert set(post_ids(page)) <= negatives
    for text in ("'); drop table post_sentiment--", "&&&"):
        page.fill("#post-search", text)
        page.press("#post-search", "Enter")
        expect(page.locator("#posts .empty")).to_have_text("No posts in this window.")

    page.fill("#post-search", "")
    page.press("#post-search", "Enter")
    page.click(".filters button[data-label=positive]")
    expect(page.locator("#posts-scope")).to_contain_text("positive")
    assert set(page.locator("#posts .badge").all_inner_texts()) == {"positive"}
    page.select_option("#post-source", "unknown")  # what producers that say nothing are stored as
    expect(page.locator("#posts-scope")).to_contain_text("unknown")
    assert set(page.locator("#posts .badge").all_inner_texts()) == {"positive"}
    assert page.errors == []


def test_exports_download_the_posts_in_view(page, seeded, tmp_path):
    open_dashboard(page, seeded.base_url)
    brand = sorted(SEED_VOLUME)[0]
    page.click(".filters button[data-label=negative]")
    expect(page.locator("#posts-scope")).to_contain_text("negative")
    expected = {r.post_id for r in SEED if r.brands[0] == brand and r.label.value == "negative"}
    with page.expect_download() as info:
        page.click("#export-csv")
    download = info.value
    assert download.suggested_filename.startswith(f"{brand}-posts-") and download.suggested_filename.endswith(".csv")
    download.save_as(tmp_path / "posts.csv")
    with open(tmp_path / "posts.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["post_id"] for r in rows} == expected and {r["label"] for r in rows} == {"negative"}

    with page.expect_download() as info:
        page.click("#export-parquet")
    info.value.save_as(tmp_path / "posts.parquet")
    table = pq.read_table(tmp_path / "posts.parquet")
    assert set(table.column("post_id").to_pylist()) == expected

    with page.expect_download() as info:
        page.click("#export-trends")
    info.value.save_as(tmp_path / "trends.csv")
    with open(tmp_path / "trends.csv", newline="") as f:
        buckets = list(csv.DictReader(f))
    assert sum(int(b["volume"]) for b in buckets) == SEED_VOLUME[brand]
    assert page.errors == []


def stored_in_window(pipeline, brand: str, since: datetime, until: datetime) -> set[str]:
    ps = post_sentiment.c
    query = select(ps.post_id).where(ps.brands.op("@>")(literal([brand], ARRAY(Text))), ps.deleted_at.is_(None),
                                     ps.created_at >= since, ps.created_at < until)
    with pipeline.engine.connect() as conn:
        return set(conn.execute(query).scalars())


def downloaded(page, button: str, path):
    with page.expect_download() as info:
        page.click(button)
    info.value.save_as(path)
    return info.value.suggested_filename


def test_acceptance_an_analyst_follows_a_spike_to_its_posts_and_exports_them(browser, seeded, tmp_path):
    """Pick a brand and a week, see the anomaly alert and its why, open the posts behind it (from the alert and
    from a chart point), export them as CSV and Parquet."""
    brand = "globex"
    ours = sorted((r for r in SEED if r.brands[0] == brand), key=lambda r: r.created_at)
    negative = next(r for r in ours if r.label.value == "negative")
    start = ours[0].created_at.replace(second=0, microsecond=0)
    end = ours[len(ours) // 2].created_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    details = {"metric": "volume", "z": 5.2, "observed": 31.0, "keyphrases": ["support terrible"],
               "baseline": {"median": 6.0, "mad": 2.0, "scale": 2.97, "scale_from": "mad", "samples": 4,
                            "seasonal": True, "hour_of_week": 40},
               "example_posts": [{"post_id": negative.post_id, "reason": "most_negative"}]}
    with seeded.engine.begin() as conn:
        event_id = conn.execute(alert_event.insert().values(
            brand=brand, kind="anomaly", fired_at=end, window_start=start, window_end=end, value=5.2, threshold=4.0,
            volume=31, details=details, message=f"{brand}: volume anomaly, 31 posts in the last hour")
            .returning(alert_event.c.id)).scalar_one()
    page = open_in_zone(browser, seeded.base_url, "Europe/Berlin")
    try:
        page.select_option("#brand", brand)
        expect(page.locator("#trend-chart")).to_have_attribute("data-brand", brand)
        now = datetime.now(UTC)  # a week, typed in the browser's zone (Berlin: UTC+1 in winter, +2 in summer)
        page.select_option("#tz", "UTC")
        page.fill("#since", (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"))
        page.fill("#until", (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
        page.locator("#until").dispatch_event("change")
        expect(page.locator("#granularity")).to_have_value("hour")

        alert = page.locator(f"#alerts li[data-alert-id='{event_id}']")
        expect(alert.locator(".why .z")).to_have_text("z +5.2")
        expect(alert.locator(".why")).to_contain_text("vs median 6 (Tue 16:00 UTC, 4 weeks)")
        expect(alert).to_contain_text(f"window {start:%Y-%m-%d %H:%M} UTC to {end:%Y-%m-%d %H:%M} UTC")

        alert.locator(".alert-posts").click()
        expect(page.locator("#posts-scope")).to_contain_text(f"Posts behind the anomaly alert on {brand}")
        expected = stored_in_window(seeded, brand, start, end)
        while page.locator("#load-more").is_visible():
            count = page.locator("#posts li[data-post-id]").count()
            page.click("#load-more")
            expect(page.locator("#posts li[data-post-id]")).not_to_have_count(count)
        expect(page.locator("#posts li[data-post-id]")).to_have_count(len(expected))
        assert set(post_ids(page)) == expected

        name = downloaded(page, "#export-csv", tmp_path / "spike.csv")
        assert name.startswith(f"{brand}-posts-") and name.endswith(".csv")
        with open(tmp_path / "spike.csv", newline="") as f:
            assert {row["post_id"] for row in csv.DictReader(f)} == expected
        downloaded(page, "#export-parquet", tmp_path / "spike.parquet")
        assert set(pq.read_table(tmp_path / "spike.parquet").column("post_id").to_pylist()) == expected
        if os.environ.get("DASHBOARD_SCREENSHOTS"):
            page.screenshot(path="docs/dashboard-analyst.png", full_page=True)

        index = page.evaluate("state.timeline.reduce((best, s, i, all) => "
                              "(s.p?.volume || 0) > (all[best].p?.volume || 0) ? i : best, 0)")
        hour = datetime.fromtimestamp(page.evaluate(f"state.timeline[{index}].t") / 1000, UTC)
        click_bucket(page, index)
        expect(page.locator("#posts-scope")).to_contain_text(f"Posts of the hour from {hour:%Y-%m-%d %H:%M} UTC")
        in_hour = stored_in_window(seeded, brand, hour, hour + timedelta(hours=1))
        expect(page.locator("#posts li[data-post-id]")).to_have_count(min(len(in_hour), 12))
        assert set(post_ids(page)) <= in_hour
        assert page.errors == []
    finally:
        page.context.close()


def test_share_of_voice_compares_the_top_twelve_of_many_brands(page, seeded):
    """/api/compare takes 12 brands: with 16, the panel compares the 12 largest, or 11 and the selected one."""
    extra = [f"brand{i:02d}" for i in range(13)]
    fresh = [r for i, b in enumerate(extra) for r in sample_results(i + 1, f"many-{b}", brands=[b], seed=i,
                                                                    minutes_back=10)]
    before = seeded.stored()
    seeded.produce(fresh)
    wait_stored(seeded, before + len(fresh))
    deadline = time.monotonic() + 30
    while True:  # day buckets, which the brand list reads, follow the posts
        open_dashboard(page, seeded.base_url)
        if page.locator("#brand option").count() == 16:
            break
        assert time.monotonic() < deadline, "the new brands never showed"
        time.sleep(1)
    largest = {"acme", "globex", "initech", *(f"brand{i:02d}" for i in range(4, 13))}
    expect(page.locator("#sov-chart")).to_have_attribute("data-brands", ",".join(sorted(largest)))
    expect(page.locator("#sov-meta")).to_contain_text("top 12 of 16 brands")
    assert page.locator("#compare-table tbody tr").count() == 12

    page.select_option("#brand", "brand00")
    with_selected = sorted((largest - {"brand04"}) | {"brand00"})
    expect(page.locator("#sov-chart")).to_have_attribute("data-brands", ",".join(with_selected))
    expect(page.locator("#compare-table tr.selected td").first).to_have_text("brand00")
    assert page.errors == []
