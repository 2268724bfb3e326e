/* Dashboard: fetches the API with the read token as a Bearer header, listens to /api/live (SSE). */
"use strict";

const COLORS = { negative: "#ef4444", neutral: "#9ca3af", positive: "#22c55e", net: "#2563eb" };
const PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#06b6d4", "#84cc16", "#ec4899",
                 "#64748b", "#a16207", "#0f766e", "#be185d", "#4338ca"];
const MAX_COMPARE = 12;         // what /api/compare takes
const LOW_VOLUME = 10;          // buckets with fewer posts are drawn faded: their net sentiment is mostly noise
const MAX_FILLED_BUCKETS = 5000;  // longer timelines are drawn from the points alone, without empty buckets
const PAGE_SIZE = 12;
const STEP_MS = { minute: 60e3, hour: 3600e3, day: 86400e3 };
const PRESETS = { "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
const state = { token: null, brand: null, brands: [], granularity: "minute", label: "", language: "",
                postSource: "", q: "", liveCount: 0, trendChart: null, sovChart: null, source: null, timers: {},
                range: { preset: "24h", since: null, until: null }, tz: localStorage.getItem("monitor-tz") || "local",
                drill: null, cursor: null, pages: 0, postsAsked: 0, trendsAsked: 0, timeline: [] };

const $ = (id) => document.getElementById(id);

function takeToken() {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    sessionStorage.setItem("monitor-token", fromUrl);
    url.searchParams.delete("token");  // keep the token out of history, bookmarks and screenshots
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  state.token = sessionStorage.getItem("monitor-token");
}

class AuthError extends Error {}

function authHeaders() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

async function api(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (response.status === 401 || response.status === 403) throw new AuthError(response.status + "");
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function showLogin(message) {
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

/* Time: one format everywhere, "2026-01-31 14:05 UTC", 24 h, in the chosen zone (the browser's or UTC). */
function timeZone() {
  return state.tz === "UTC" ? "UTC" : undefined;
}

function timeParts(value) {
  const format = new Intl.DateTimeFormat("en-GB", { timeZone: timeZone(), year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" });
  return Object.fromEntries(format.formatToParts(new Date(value)).map((p) => [p.type, p.value]));
}

function zoneName(value) {
  return state.tz === "UTC" ? "UTC" : timeParts(value ?? Date.now()).timeZoneName;
}

function fmtTime(value) {
  const p = timeParts(value);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${state.tz === "UTC" ? "UTC" : p.timeZoneName}`;
}

/* A UTC day bucket's date: day buckets are cut in UTC whatever zone the page shows. */
function fmtDay(value) {
  return new Date(value).toISOString().slice(0, 10) + " (UTC day)";
}

function tickLabel(ms, stepMs) {
  const p = timeParts(ms);
  if (stepMs >= 86400e3) return `${p.year}-${p.month}-${p.day}`;
  if (p.hour === "00" && p.minute === "00") return `${p.month}-${p.day}`;
  return `${p.hour}:${p.minute}`;
}

function toInputValue(value) {
  if (!value) return "";
  const p = timeParts(value);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

function fromInputValue(text) {
  if (!text) return null;
  const date = new Date(state.tz === "UTC" ? text + "Z" : text);  // datetime-local: no zone, read in the chosen one
  return Number.isNaN(date.getTime()) ? null : date;
}

/* The date range every card shows: a preset ends now (and moves with live updates), a custom one is fixed. */
function rangeBounds() {
  if (state.range.preset) return { since: new Date(Date.now() - PRESETS[state.range.preset]), until: null };
  return { since: state.range.since, until: state.range.until };
}

function windowParams(bounds = rangeBounds()) {
  const params = new URLSearchParams();
  if (bounds.since) params.set("since", bounds.since.toISOString());
  if (bounds.until) params.set("until", bounds.until.toISOString());
  return params;
}

function granularityFor(spanMs) {
  if (spanMs <= PRESETS["24h"]) return "minute";
  if (spanMs <= PRESETS["30d"]) return "hour";
  return "day";
}

function debounce(name, fn, ms) {
  clearTimeout(state.timers[name]);
  state.timers[name] = setTimeout(fn, ms);
}

async function loadBrands() {
  const listed = await api("/api/brands");
  state.brands = listed.map((b) => b.name);
  const select = $("brand");
  const previous = state.brand;
  select.replaceChildren(...state.brands.map((name) => el("option", { value: name }, name)));
  const wanted = new URL(window.location.href).searchParams.get("brand");
  state.brand = [previous, wanted].find((b) => b && state.brands.includes(b)) || state.brands[0] || null;
  if (state.brand) select.value = state.brand;
}

/* 95 % interval of net sentiment (positive share - negative share): normal approximation of the difference of two
   shares of one multinomial sample, with one pseudo-post per label so that a bucket of one post is not +-0. */
function netInterval(p) {
  const n = p.volume;
  if (!n) return null;
  const pos = (p.positive + 1) / (n + 3), neg = (p.negative + 1) / (n + 3);
  const half = 1.96 * Math.sqrt(Math.max(0, pos + neg - (pos - neg) ** 2) / n);
  const clamp = (v) => Math.max(-1, Math.min(1, v));
  return [clamp(p.net_sentiment - half), clamp(p.net_sentiment + half)];
}

/* Every bucket of the window, empty ones as null (gaps on the time axis), each with its point when it has one. */
function timeline(points, bounds, granularity) {
  const step = STEP_MS[granularity];
  const byStart = new Map(points.map((p) => [Date.parse(p.bucket_start), p]));
  const first = bounds.since ? Math.floor(bounds.since.getTime() / step) * step : null;
  const last = (bounds.until ? bounds.until.getTime() : Date.now());
  if (first === null || (last - first) / step > MAX_FILLED_BUCKETS) {
    return [...byStart.entries()].map(([t, p]) => ({ t, p }));
  }
  const slots = [];
  for (let t = first; t < last; t += step) slots.push({ t, p: byStart.get(t) || null });
  return slots;
}

/* Ticks at round times in the chosen zone: a linear axis over epoch ms would put them at round numbers of ms. */
const TICK_STEPS = [60e3, 5 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3,
                    2 * 86400e3, 7 * 86400e3, 14 * 86400e3, 30 * 86400e3, 91 * 86400e3];

function roundTicks(scale) {
  const span = scale.max - scale.min;
  const step = TICK_STEPS.find((s) => span / s <= 10) || TICK_STEPS[TICK_STEPS.length - 1];
  const offset = -new Date(scale.min).getTimezoneOffset() * 60e3 * (state.tz === "UTC" ? 0 : 1);
  const ticks = [];
  for (let t = Math.ceil((scale.min + offset) / step) * step - offset; t <= scale.max; t += step) ticks.push({ value: t });
  scale.ticks = ticks;
  scale.tickStep = step;
}

function trendChart() {
  if (state.trendChart) return state.trendChart;
  const bar = (label) => ({ type: "bar", label, data: [], backgroundColor: COLORS[label], stack: "volume",
                            yAxisID: "y", order: 3, barPercentage: 1, categoryPercentage: 0.9 });
  const band = (label, fill) => ({ type: "line", label, data: [], yAxisID: "net", order: 1, pointRadius: 0,
                                   pointHitRadius: 0, borderWidth: 0, fill, backgroundColor: "rgba(37,99,235,0.15)",
                                   spanGaps: false });
  const faded = (ctx) => (state.timeline[ctx.dataIndex]?.p?.volume || 0) < LOW_VOLUME;
  state.trendChart = new Chart($("trend-chart"), {
    data: { datasets: [bar("negative"), bar("neutral"), bar("positive"),
      { type: "line", label: "net sentiment", data: [], borderColor: COLORS.net, backgroundColor: COLORS.net,
        yAxisID: "net", order: 0, spanGaps: false, borderWidth: 2,
        pointRadius: (ctx) => (faded(ctx) ? 1.5 : 3.5),
        pointBackgroundColor: (ctx) => (faded(ctx) ? "rgba(37,99,235,0.3)" : COLORS.net),
        pointBorderColor: (ctx) => (faded(ctx) ? "rgba(37,99,235,0.3)" : COLORS.net) },
      band("95 % low", false), band("95 % interval", "-1")] },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: "index", intersect: false },
      onClick: (event, elements, chart) => drillIntoBucket(event, chart),
      scales: {
        x: { type: "linear", stacked: true, grid: { display: false }, afterBuildTicks: roundTicks,
             ticks: { autoSkip: false, maxRotation: 0, callback: (value, index, ticks) =>
               tickLabel(value, state.trendChart?.scales.x.tickStep || 0) },
             title: { display: true, text: "time" } },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: "posts" } },
        net: { position: "right", min: -1, max: 1, grid: { drawOnChartArea: false },
               title: { display: true, text: "net sentiment" } },
      },
      plugins: {
        legend: { position: "bottom", labels: { filter: (item) => item.text !== "95 % low" } },
        tooltip: { filter: (item) => item.datasetIndex < 4, callbacks: {
          title: (items) => items.length ? bucketLabel(state.timeline[items[0].dataIndex].t) : "",
          label: tooltipLabel,
          footer: (items) => {
            const p = items.length ? state.timeline[items[0].dataIndex].p : null;
            return p ? `${p.volume} posts${p.volume < LOW_VOLUME ? " (low volume)" : ""}` : "no posts";
          } } },
      },
    },
  });
  return state.trendChart;
}

function bucketLabel(t) {
  return fmtTime(t) + " (" + state.granularity + ")";
}

function tooltipLabel(item) {
  const p = state.timeline[item.dataIndex].p;
  if (!p) return null;
  if (item.datasetIndex < 3) return `${item.dataset.label}: ${item.parsed.y}`;
  const [low, high] = netInterval(p);
  const sign = (v) => (v >= 0 ? "+" : "") + v.toFixed(2);
  return `net sentiment ${sign(p.net_sentiment)} (95 % ${sign(low)} to ${sign(high)})`;
}

async function loadTrends() {
  if (!state.brand) return;
  const bounds = rangeBounds();
  const params = windowParams(bounds);
  params.set("granularity", state.granularity);
  const asked = ++state.trendsAsked;
  const series = await api(`/api/brands/${encodeURIComponent(state.brand)}/trends?${params}`);
  if (asked !== state.trendsAsked) return;
  const slots = timeline(series.points, bounds, series.granularity);
  state.timeline = slots;
  const chart = trendChart();
  const step = STEP_MS[series.granularity];
  // Each value at its bucket's middle: a bar then spans its bucket, and a click anywhere in it finds it.
  const values = (pick) => slots.map(({ t, p }) => ({ x: t + step / 2, y: p ? pick(p) : null }));
  chart.data.datasets[0].data = values((p) => p.negative);
  chart.data.datasets[1].data = values((p) => p.neutral);
  chart.data.datasets[2].data = values((p) => p.positive);
  chart.data.datasets[3].data = values((p) => Math.round(p.net_sentiment * 1000) / 1000);
  chart.data.datasets[4].data = values((p) => netInterval(p)[0]);
  chart.data.datasets[5].data = values((p) => netInterval(p)[1]);
  chart.options.scales.x.min = slots.length ? slots[0].t : (bounds.since?.getTime() ?? undefined);
  chart.options.scales.x.max = slots.length ? slots[slots.length - 1].t + step : undefined;
  chart.options.scales.x.title.text = `time (${zoneName()}), ${series.granularity} buckets`;
  chart.update();
  const total = series.points.reduce((sum, p) => sum + p.volume, 0);
  const canvas = $("trend-chart");
  canvas.dataset.totalVolume = String(total);
  canvas.dataset.brand = series.brand;
  canvas.dataset.buckets = String(slots.length);
  $("total-volume").textContent = String(total);
  $("source").textContent = series.source;
  $("brand-title").textContent = series.brand;
  $("last-update").textContent = fmtTime(Date.now());
}

/* A click on the chart: the posts of the bucket under the pointer. */
function drillIntoBucket(event, chart) {
  const [hit] = chart.getElementsAtEventForMode(event, "index", { intersect: false }, true);
  const slot = hit ? state.timeline[hit.index] : null;
  if (!slot) return;
  const since = new Date(slot.t), until = new Date(slot.t + STEP_MS[state.granularity]);
  drillTo({ since, until, kind: "bucket", text: `Posts of the ${state.granularity} from ${fmtTime(since)}` });
}

/* Share of voice across at most MAX_COMPARE brands: the largest by volume in the range, and the selected one. */
function comparedBrands(volumes) {
  const byVolume = [...state.brands].sort((a, b) => (volumes[b] || 0) - (volumes[a] || 0) || a.localeCompare(b));
  let chosen = byVolume.slice(0, MAX_COMPARE);
  if (state.brand && !chosen.includes(state.brand)) chosen = [...chosen.slice(0, MAX_COMPARE - 1), state.brand];
  return chosen.sort();
}

async function loadCompare() {
  if (!state.brands.length) return;
  const inRange = state.brands.length > MAX_COMPARE ? await api(`/api/brands?${windowParams()}`) : [];
  const compared = comparedBrands(Object.fromEntries(inRange.map((b) => [b.name, b.volume])));
  const params = windowParams();
  params.set("granularity", state.granularity);
  for (const b of compared) params.append("brands", b);
  const comparison = await api(`/api/compare?${params}`);
  const rows = comparison.brands;
  if (!state.sovChart) {
    state.sovChart = new Chart($("sov-chart"), {
      type: "doughnut",
      data: { labels: [], datasets: [{ data: [], backgroundColor: PALETTE }] },
      options: { responsive: true, maintainAspectRatio: false, animation: { duration: 250 },
                 plugins: { legend: { position: "right" } } },
    });
  }
  state.sovChart.data.labels = rows.map((r) => r.brand);
  state.sovChart.data.datasets[0].data = rows.map((r) => r.volume);
  state.sovChart.update();
  $("sov-chart").dataset.brands = rows.map((r) => r.brand).join(",");
  $("sov-meta").textContent = state.brands.length > compared.length
    ? `top ${compared.length} of ${state.brands.length} brands by volume in the range (with the selected one); ` +
      "shares are of these brands' posts" : "across brands, same window";
  $("compare-table").querySelector("tbody").replaceChildren(...rows.map((r) => el("tr",
    { class: r.brand === state.brand ? "selected" : "" },
    el("td", {}, r.brand), el("td", {}, String(r.volume)),
    el("td", {}, (r.share_of_voice * 100).toFixed(1) + " %"),
    el("td", {}, (r.net_sentiment >= 0 ? "+" : "") + r.net_sentiment.toFixed(2)))));
}

// Posts per language for the selected brand; those in languages the model does not support are left out of the
// trends above, and shown here so that is visible.
async function loadLanguages() {
  if (!state.brand) return;
  const params = windowParams();
  params.set("granularity", state.granularity);
  const breakdown = await api(`/api/brands/${encodeURIComponent(state.brand)}/languages?${params}`);
  const rows = breakdown.languages.map((r) => el("tr",
    { class: r.language_supported ? "" : "unsupported", "data-language": r.language },
    el("td", {}, r.language), el("td", {}, String(r.volume)), el("td", {}, (r.share * 100).toFixed(1) + " %"),
    el("td", {}, r.language_supported ? "yes" : "no: not supported")));
  $("language-table").querySelector("tbody").replaceChildren(...rows);
  $("language-meta").textContent = breakdown.unsupported_volume
    ? `${breakdown.unsupported_volume} of ${breakdown.total_volume} posts left out of the trends`
    : (breakdown.total_volume ? "every post counted" : "no posts in this window");
  fillOptions($("post-language"), "any language", [...new Set(breakdown.languages.map((r) => r.language))],
    state.language);
}

function fillOptions(select, anyText, values, current) {
  const all = current && !values.includes(current) ? [...values, current] : values;
  select.replaceChildren(el("option", { value: "" }, anyText), ...all.map((v) => el("option", { value: v }, v)));
  select.value = current || "";
}

async function loadSources() {
  if (!state.brand) return;
  const sources = await api(`/api/brands/${encodeURIComponent(state.brand)}/sources?${windowParams()}`);
  fillOptions($("post-source"), "any source", sources.map((s) => s.source).filter(Boolean), state.postSource);
}

// What people say about the brand in the range, per sentiment, from the keyphrase tables: most posts first, and a
// mark on terms rising against the window of equal length before (z of at least 1.96). Clicking one searches the
// posts for it. Hour buckets up to 31 days back, day buckets beyond (what the endpoint keeps).
const RISING_Z = 1.96;

async function loadKeyphrases() {
  if (!state.brand) return;
  const bounds = rangeBounds();
  const until = bounds.until || new Date();
  const params = windowParams({ since: bounds.since, until });
  params.set("granularity", until - bounds.since <= 31 * 86400e3 ? "hour" : "day");
  params.set("top", "6");
  const found = await api(`/api/brands/${encodeURIComponent(state.brand)}/keyphrases?${params}`);
  const columns = ["negative", "positive"].map((label) => {
    const rows = found.phrases.filter((k) => k.label === label);
    return el("div", { class: "keyphrase-column", "data-label": label },
      el("h3", {}, el("span", { class: "badge " + label }, label)),
      el("ol", {}, ...(rows.length ? rows.map((k) => el("li", {
        "data-phrase": k.phrase, class: k.rising !== null && k.rising >= RISING_Z ? "rising" : "",
        title: `${k.posts} posts (${(k.share * 100).toFixed(0)} % of ${label}); ${k.previous_posts} in the window before` +
          (k.rising !== null ? `; rising z ${k.rising.toFixed(1)}` : ""),
      }, el("button", { type: "button", class: "link" }, k.phrase), ` ${k.posts}`,
        k.rising !== null && k.rising >= RISING_Z ? el("span", { class: "rise" }, " ↑ rising") : ""))
        : [el("li", { class: "empty" }, "none yet")])));
  });
  $("keyphrases").replaceChildren(...columns);
  $("keyphrase-meta").textContent = `${found.granularity} buckets, since ${fmtTime(found.since)}`;
}

// Which models scored the stored posts, and each shadow challenger's agreement with the champion: a 3x3 table of
// champion label (rows) against challenger label (columns), so a shift between two labels shows at a glance.
const LABELS = ["negative", "neutral", "positive"];

function confusionTable(comparison) {
  const head = el("tr", {}, el("th", {}, "champion \\ challenger"), ...LABELS.map((l) => el("th", {}, l)));
  const rows = LABELS.map((champion) => el("tr", {}, el("th", {}, champion), ...LABELS.map((challenger) =>
    el("td", { class: champion === challenger ? "agree" : "" }, String(comparison.confusion[champion][challenger])))));
  return el("table", { class: "confusion" }, el("thead", {}, head), el("tbody", {}, ...rows));
}

async function loadModels() {
  const [versions, shadow] = await Promise.all([api("/api/models"), api("/api/models/shadow")]);
  $("model-table").querySelector("tbody").replaceChildren(...versions.slice(0, 8).map((m) => el("tr",
    { "data-model": m.model_version },
    el("td", { class: "model-id" }, m.model_version), el("td", {}, String(m.live_counts)),
    el("td", {}, String(m.rescored_counts)), el("td", {}, m.last_day ? fmtDay(m.last_day) : "-"))));
  $("model-meta").textContent = versions.length ? `${versions.length} model${versions.length > 1 ? "s" : ""}` : "";
  $("shadow").replaceChildren(...shadow.map((c) => el("div", { class: "shadow", "data-challenger": c.challenger },
    el("p", {}, el("strong", {}, "Shadow " + c.challenger), ": ",
      c.agreement === null ? "no post compared yet"
        : `agrees on ${(c.agreement * 100).toFixed(1)} % of ${c.compared} posts`,
      c.waiting ? ` (${c.waiting} awaiting the champion's result)` : ""),
    confusionTable(c))));
}

// Thumbnails of inline images, by API path -> a promise of an object URL. An <img> cannot send the token,
// so each is fetched with it, once: a post's thumbnail never changes.
const thumbnails = new Map();

function thumbnailSource(path) {
  if (!thumbnails.has(path)) {
    thumbnails.set(path, fetch(path, { headers: authHeaders() }).then(async (response) => {
      if (!response.ok) throw new Error(path + ": HTTP " + response.status);
      return URL.createObjectURL(await response.blob());
    }));
  }
  return thumbnails.get(path);
}

// Revoked a while after the list stops showing them: an <img> of the list being replaced may still be reading
// its object URL, and a revoked one fails to load (an error in the console, a broken image).
const REVOKE_DELAY_MS = 30000;

function forgetThumbnailsBut(kept) {
  for (const [path, source] of thumbnails) {
    if (kept.has(path)) continue;
    thumbnails.delete(path);
    source.then((url) => setTimeout(() => URL.revokeObjectURL(url), REVOKE_DELAY_MS), () => {});
  }
}

function thumbnail(post) {
  const ref = post.image_ref;
  if (post.thumbnail_url) {
    const img = el("img", { class: "thumb", alt: "post image" });
    thumbnailSource(post.thumbnail_url).then((src) => { img.src = src; }, (err) => console.warn(err));
    return img;
  }
  if (ref && /^https?:\/\//i.test(ref)) {
    const img = el("img", { class: "thumb", src: ref, alt: "post image", loading: "lazy",
                            referrerpolicy: "no-referrer" });
    return img;
  }
  if (ref) return el("div", { class: "thumb placeholder", title: ref }, "inline image");
  return el("div", { class: "thumb placeholder" }, "text only");
}

/* The posts list: the range (or a drilled-into bucket or alert window), the filters and the search, a page at a
   time. The same query makes the exports. */
function postsParams() {
  const params = windowParams(state.drill || rangeBounds());
  if (state.label) params.set("label", state.label);
  if (state.language) params.set("language", state.language);
  if (state.postSource) params.set("source", state.postSource);
  if (state.q) params.set("q", state.q);
  return params;
}

function renderPost(p) {
  return el("li", { "data-post-id": p.post_id },
    thumbnail(p),
    el("div", { class: "post-body" },
      el("p", { class: "post-text" }, p.text_excerpt || "(no text)"),
      el("span", { class: "badge " + p.label }, p.label),
      el("span", { class: "meta" }, ` ${(p.confidence * 100).toFixed(0)} % · ${fmtTime(p.created_at)}` +
        (p.source ? ` · ${p.source}` : "") + (p.language ? ` · ${p.language}` : "")),
      explainSlot(p.post_id)));
}

async function loadPosts(more = false) {
  if (!state.brand) return;
  const params = postsParams();
  params.set("limit", String(PAGE_SIZE));
  if (more && state.cursor) params.set("cursor", state.cursor);
  const asked = ++state.postsAsked;
  state.loadingMore = more;
  let page;
  try {
    page = await api(`/api/brands/${encodeURIComponent(state.brand)}/posts/page?${params}`);
  } finally {
    if (asked === state.postsAsked) state.loadingMore = false;
  }
  if (asked !== state.postsAsked) return;  // a newer request (other filters, window or brand) answers instead
  const list = $("posts");
  if (!more) forgetThumbnailsBut(new Set(page.posts.map((p) => p.thumbnail_url).filter(Boolean)));
  const items = page.posts.map(renderPost);
  if (more) list.querySelector(".empty")?.remove();
  if (more) list.append(...items);
  else list.replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "No posts in this window.")]));
  state.cursor = page.next_cursor;
  state.pages = more ? state.pages + 1 : 1;
  $("load-more").hidden = !page.next_cursor;
  showScope();
}

function showScope() {
  const bounds = state.drill || rangeBounds();
  const range = `${fmtTime(bounds.since)} to ${bounds.until ? fmtTime(bounds.until) : "now"}`;
  const filters = [state.label, state.language, state.postSource, state.q && `"${state.q}"`].filter(Boolean);
  $("posts-scope").textContent = (state.drill ? state.drill.text + ": " : "Posts of the range: ") + range +
    (filters.length ? " · " + filters.join(" · ") : "");
  $("posts-clear").hidden = !state.drill;
}

/* Narrows the posts list to a bucket or an alert's window until the range changes or "back" is clicked. */
function drillTo(drill) {
  state.drill = drill;
  guarded(async () => { await loadPosts(); })();
  $("posts").scrollIntoView({ block: "nearest" });
}

/* Downloads with the token: an <a href> could not send it, so fetch, then save the Blob under the server's name. */
async function download(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (response.status === 401 || response.status === 403) throw new AuthError(response.status + "");
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  const disposition = response.headers.get("content-disposition") || "";
  const name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || "export";
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: name, hidden: "" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), REVOKE_DELAY_MS);
}

function exportPosts(format) {
  const params = postsParams();
  params.set("format", format);
  return download(`/api/brands/${encodeURIComponent(state.brand)}/posts/export?${params}`);
}

function exportTrends() {
  const params = windowParams();
  params.set("granularity", state.granularity);
  params.set("format", "csv");
  return download(`/api/brands/${encodeURIComponent(state.brand)}/trends/export?${params}`);
}

// Explanations ("why?"): which words drove the label, from GET /api/posts/{id}/explanation. Fetched once per post
// and kept open across the list's refreshes.
const explanations = new Map();
const openExplanations = new Set();

function explainSlot(postId) {
  const panel = el("div", { class: "explanation" });
  const button = el("button", { type: "button", class: "why-button", title: "Which words drove the label" }, "why?");
  button.addEventListener("click", () => {
    if (openExplanations.delete(postId)) { panel.replaceChildren(); return; }
    openExplanations.add(postId);
    showExplanation(postId, panel);
  });
  if (openExplanations.has(postId)) showExplanation(postId, panel);
  return el("div", { class: "explain" }, button, panel);
}

async function fetchExplanation(postId) {
  const response = await fetch(`/api/posts/${encodeURIComponent(postId)}/explanation`, { headers: authHeaders() });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(typeof body.detail === "string" ? body.detail : "HTTP " + response.status);
  return body;
}

function showExplanation(postId, panel) {
  panel.replaceChildren(el("span", { class: "meta" }, "explaining…"));
  if (!explanations.has(postId)) {
    explanations.set(postId, fetchExplanation(postId).catch((err) => { explanations.delete(postId); throw err; }));
  }
  explanations.get(postId).then((x) => panel.replaceChildren(...explanationParts(x)),
    (err) => panel.replaceChildren(el("span", { class: "meta" }, "no explanation: " + err.message)));
}

function explanationParts(x) {
  const text = el("p", { class: "explained-text" });
  let at = 0;
  for (const w of x.words) {
    text.append(x.text.slice(at, w.start));
    const a = w.attribution;
    const word = el("span", { class: "word " + (a >= 0 ? "towards" : "against"), "data-attribution": a.toFixed(3),
                              title: `${a >= 0 ? "+" : ""}${a.toFixed(2)} ${a >= 0 ? "towards" : "against"} ${x.label}` +
                                     (w.tokens ? "" : " (past the model's token limit)") }, w.text);
    word.style.backgroundColor = `rgba(${a >= 0 ? "37, 99, 235" : "234, 88, 12"}, ${(Math.abs(a) * 0.55).toFixed(3)})`;
    text.append(word);
    at = w.end;
  }
  text.append(x.text.slice(at));
  const parts = [el("div", { class: "meta" }, "why ", el("span", { class: "badge " + x.label }, x.label),
    ": blue words pushed towards it, orange against")];
  parts.push(text);
  if (x.modality) {
    const m = x.modality;
    parts.push(el("div", { class: "modality" }, `text says ${m.text_label}, image says ${m.image_label}`,
      m.image_text_disagree ? el("span", { class: "disagree" }, "image and text disagree") : ""));
  }
  if (!x.same_model) parts.push(el("div", { class: "meta" }, x.note));
  return parts;
}

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/* An anomaly's why: z-score and baseline, keyphrases, and the example posts still stored. */
function alertWhy(a) {
  const d = a.details;
  const base = d.baseline;
  const hour = `${DAYS[Math.floor(base.hour_of_week / 24)]} ${String(base.hour_of_week % 24).padStart(2, "0")}:00 UTC`;
  const observed = d.metric === "volume" ? `${d.observed} posts` : d.observed.toFixed(2);
  const median = d.metric === "volume" ? `${base.median}` : base.median.toFixed(2);
  const why = el("div", { class: "why" },
    el("span", { class: "z" }, `z ${d.z >= 0 ? "+" : ""}${d.z.toFixed(1)}`),
    el("span", { class: "meta" }, ` ${d.metric.replace("_", " ")} ${observed} vs median ${median} ` +
      (base.seasonal ? `(${hour}, ${base.samples} weeks)` : `(all hours, ${base.samples} samples)`)));
  if (d.keyphrases.length) {
    why.append(el("div", { class: "keyphrases" }, ...d.keyphrases.map((k) => el("span", { class: "chip" }, k))));
  }
  if (a.examples.length) {
    why.append(el("ul", { class: "examples" }, ...a.examples.map((p) => el("li", { "data-post-id": p.post_id },
      el("span", { class: "badge " + p.label }, p.label), " ", p.text_excerpt || "(no text)"))));
  }
  return why;
}

/* Alerts fired in the range, every brand's (the selected one's marked); a click shows the posts of its window. */
async function loadAlerts() {
  const bounds = rangeBounds();
  const params = new URLSearchParams({ limit: "50" });
  if (bounds.since) params.set("since", bounds.since.toISOString());
  if (bounds.until) params.set("until", bounds.until.toISOString());
  const alerts = await api(`/api/alerts?${params}`);
  const items = alerts.map((a) => {
    const item = el("li", { "data-alert-id": String(a.id), "data-kind": a.kind, "data-brand": a.brand,
                            class: "clickable" + (a.brand === state.brand ? "" : " other-brand"),
                            title: "Show the posts of this alert's window" },
      el("span", { class: "kind" }, a.kind.replace("_", " ")), a.message,
      ...(a.details ? [alertWhy(a)] : []),
      el("span", { class: "when" }, `fired ${fmtTime(a.fired_at)} · window ${fmtTime(a.window_start)} to ` +
        fmtTime(a.window_end) + " ", el("button", { type: "button", class: "small alert-posts" }, "posts")));
    item.addEventListener("click", () => guarded(() => showAlertPosts(a))());
    return item;
  });
  $("alerts").replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "No alerts fired.")]));
  $("alert-meta").textContent = alerts.length ? `${alerts.length} in the range` : "";
}

async function showAlertPosts(alert) {
  if (alert.brand !== state.brand && state.brands.includes(alert.brand)) await selectBrand(alert.brand);
  drillTo({ since: new Date(alert.window_start), until: new Date(alert.window_end), kind: "alert",
            text: `Posts behind the ${alert.kind.replace("_", " ")} alert on ${alert.brand}` });
}

async function loadHealth() {
  const health = await api("/api/health");
  const parts = [];
  const ok = (flag, name) => el("span", { class: flag ? "" : "bad" }, `${name} ${flag ? "ok" : "down"}`);
  parts.push(ok(health.database.ok, "PostgreSQL"), " · ", ok(health.redis.ok, "Redis"));
  const versions = (health.database.model_versions || []).map((v) => v.model_version);
  if (versions.length) parts.push(" · model " + versions[0]);
  if (health.database.latest_processed_at) {
    parts.push(" · last post " + fmtTime(health.database.latest_processed_at));
  }
  $("health").replaceChildren(...parts);
}

async function refreshAll() {
  await Promise.all([loadTrends(), loadCompare(), loadPosts(), loadLanguages(), loadSources(), loadAlerts(),
    loadHealth(), loadModels(), loadKeyphrases()]);
}

/* Live updates refresh the posts list only while it shows the newest posts: not under an analyst reading further
   pages or a drilled-into bucket or alert. */
async function refreshFirstPage() {
  // Not while "Load more" is on its way either: this reload would win and drop the page it asked for.
  if (state.pages <= 1 && !state.drill && !state.loadingMore) await loadPosts();
}

async function catchUp() {
  await Promise.all([loadTrends(), loadCompare(), refreshFirstPage(), loadLanguages(), loadSources(), loadAlerts(),
    loadHealth(), loadModels()]);
}

/* The cards that depend on the brand or the range (models and health do not). */
async function refreshWindow() {
  await Promise.all([loadTrends(), loadCompare(), loadPosts(), loadLanguages(), loadSources(), loadAlerts(),
    loadKeyphrases()]);
}

function guarded(fn) {
  return () => fn().catch((err) => {
    if (err instanceof AuthError) showLogin("The token was refused."); else console.warn(err);
  });
}

function connectLive() {
  if (state.source) state.source.close();
  const url = "/api/live" + (state.token ? "?token=" + encodeURIComponent(state.token) : "");
  const source = new EventSource(url);
  state.source = source;
  const pill = $("live");
  source.addEventListener("status", (event) => {
    const status = JSON.parse(event.data);
    pill.textContent = status.live ? "live" : "live paused (Redis down)";
    pill.className = "pill " + (status.live ? "on" : "off");
    if (status.live) debounce("all", guarded(catchUp), 200);  // catch up on anything missed
  });
  source.addEventListener("trend", (event) => {
    const update = JSON.parse(event.data);
    state.liveCount += 1;
    $("live-count").textContent = String(state.liveCount);
    if (!state.brands.includes(update.brand)) {
      debounce("brands", guarded(async () => { await loadBrands(); await loadCompare(); }), 500);
    }
    if (update.brand === state.brand) {
      // The posts list is left alone while the analyst reads further pages or a drilled-into window.
      debounce("trends", guarded(async () => { await loadTrends(); await refreshFirstPage(); await loadLanguages(); }),
               300);
    }
    debounce("compare", guarded(loadCompare), 800);
    debounce("alerts", guarded(loadAlerts), 1500);
  });
  source.onerror = () => { pill.textContent = "reconnecting"; pill.className = "pill off"; };
}

async function selectBrand(name) {
  state.brand = name;
  $("brand").value = name;
  state.drill = null;
  state.language = state.postSource = "";
  const url = new URL(window.location.href);
  url.searchParams.set("brand", name);
  window.history.replaceState(null, "", url.pathname + url.search);
  await Promise.all([loadTrends(), loadPosts(), loadCompare(), loadLanguages(), loadSources()]);
  await loadAlerts();  // marks the selected brand's alerts
}

function showRangeInputs() {
  const bounds = rangeBounds();
  $("since").value = toInputValue(bounds.since);
  $("until").value = bounds.until ? toInputValue(bounds.until) : "";
  for (const b of document.querySelectorAll(".range button")) {
    b.classList.toggle("active", b.dataset.preset === state.range.preset);
  }
}

/* A new range: granularity follows its length (minute up to 24 h, hour up to 30 days, day beyond), every card
   reloads, and any drill-down ends. */
function setRange(range) {
  state.range = range;
  const bounds = rangeBounds();
  state.granularity = granularityFor((bounds.until ? bounds.until.getTime() : Date.now()) - bounds.since.getTime());
  $("granularity").value = state.granularity;
  state.drill = null;
  showRangeInputs();
  guarded(refreshWindow)();
}

function customRange() {
  const since = fromInputValue($("since").value), until = fromInputValue($("until").value);
  if (!since || (until && until <= since)) return;
  setRange({ preset: null, since, until });
}

function filterChanged() {
  guarded(async () => { await loadPosts(); })();
}

function bindControls() {
  $("brand").addEventListener("change", (event) => guarded(() => selectBrand(event.target.value))());
  $("granularity").addEventListener("change", (event) => {
    state.granularity = event.target.value;
    guarded(async () => { await Promise.all([loadTrends(), loadCompare(), loadLanguages()]); })();
  });
  for (const button of document.querySelectorAll(".range button")) {
    button.addEventListener("click", () => setRange({ preset: button.dataset.preset, since: null, until: null }));
  }
  $("since").addEventListener("change", customRange);
  $("until").addEventListener("change", customRange);
  $("tz").value = state.tz;
  $("tz").addEventListener("change", (event) => {
    state.tz = event.target.value;
    localStorage.setItem("monitor-tz", state.tz);
    showRangeInputs();
    guarded(async () => { await Promise.all([loadTrends(), loadPosts(), loadAlerts(), loadHealth(), loadModels()]); })();
  });
  for (const button of document.querySelectorAll(".filters button")) {
    button.addEventListener("click", () => {
      document.querySelectorAll(".filters button").forEach((b) => b.classList.toggle("active", b === button));
      state.label = button.dataset.label;
      filterChanged();
    });
  }
  $("post-language").addEventListener("change", (event) => { state.language = event.target.value; filterChanged(); });
  $("post-source").addEventListener("change", (event) => { state.postSource = event.target.value; filterChanged(); });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.q = $("post-search").value.trim();
    filterChanged();
  });
  $("keyphrases").addEventListener("click", (event) => {  // a keyphrase: search the posts for it
    const item = event.target.closest("li[data-phrase]");
    if (!item) return;
    $("post-search").value = `"${item.dataset.phrase}"`;
    state.q = $("post-search").value;
    state.label = item.closest("[data-label]").dataset.label;
    document.querySelectorAll(".filters button").forEach((b) => b.classList.toggle("active",
      b.dataset.label === state.label));
    filterChanged();
  });
  $("load-more").addEventListener("click", () => guarded(() => loadPosts(true))());
  $("posts-clear").addEventListener("click", () => { state.drill = null; filterChanged(); });
  $("export-csv").addEventListener("click", () => guarded(() => exportPosts("csv"))());
  $("export-parquet").addEventListener("click", () => guarded(() => exportPosts("parquet"))());
  $("export-trends").addEventListener("click", () => guarded(exportTrends)());
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("monitor-token", $("token").value);
    start();
  });
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  $("tz").querySelector("option[value=local]").textContent = `browser (${local})`;
  showRangeInputs();
}

async function start() {
  takeToken();
  try {
    await loadBrands();
  } catch (err) {
    if (err instanceof AuthError) { showLogin(state.token ? "The token was refused." : ""); return; }
    throw err;
  }
  $("login").hidden = true;
  $("main").hidden = false;
  await guarded(refreshAll)();
  connectLive();
  if (state.started) return;
  state.started = true;
  setInterval(guarded(async () => {
    await Promise.all([loadAlerts(), loadHealth(), loadModels(), loadKeyphrases()]);
  }), 30000);
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => { bindControls(); start(); });
