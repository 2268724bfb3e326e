"""The dashboard end to end in headless chromium: charts with data, brand switch, a live update over SSE."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from monitor.alerts.tables import alert_event
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
    assert chart_total(page) == SEED_VOLUME[first]
    bars = page.evaluate("Chart.getChart('trend-chart').data.datasets.map(d => d.data.length)")
    assert all(n > 0 for n in bars)  # three stacked series and the net-sentiment line have points
    expect(page.locator("#sov-chart")).to_have_attribute("data-brands", "acme,globex,initech")
    assert page.locator("#compare-table tbody tr").count() == 3
    assert page.locator("#posts li[data-post-id]").count() > 0
    assert page.locator("#posts .badge").first.inner_text() in ("negative", "neutral", "positive")
    expect(page.locator("#live")).to_have_text("live")

    page.select_option("#brand", "initech")
    expect(page.locator("#trend-chart")).to_have_attribute("data-brand", "initech")
    assert chart_total(page) == SEED_VOLUME["initech"]
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
    assert chart_total(page) == SEED_VOLUME["initech"]  # the trend chart still counts supported posts only
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
