/* Dashboard: fetches the API with the read token as a Bearer header, listens to /api/live (SSE). */
"use strict";

const COLORS = { negative: "#ef4444", neutral: "#9ca3af", positive: "#22c55e", net: "#2563eb" };
const PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#06b6d4", "#84cc16", "#ec4899"];
const state = { token: null, brand: null, brands: [], granularity: "minute", label: "", liveCount: 0,
                trendChart: null, sovChart: null, source: null, timers: {} };

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

function timeLabel(iso) {
  const d = new Date(iso);
  if (state.granularity === "day") return d.toISOString().slice(0, 10);
  if (state.granularity === "hour") return d.toISOString().slice(5, 13).replace("T", " ") + "h";
  return d.toTimeString().slice(0, 5);
}

function debounce(name, fn, ms) {
  clearTimeout(state.timers[name]);
  state.timers[name] = setTimeout(fn, ms);
}

async function loadBrands() {
  state.brands = (await api("/api/brands")).map((b) => b.name);
  const select = $("brand");
  const previous = state.brand;
  select.replaceChildren(...state.brands.map((name) => el("option", { value: name }, name)));
  const wanted = new URL(window.location.href).searchParams.get("brand");
  state.brand = [previous, wanted].find((b) => b && state.brands.includes(b)) || state.brands[0] || null;
  if (state.brand) select.value = state.brand;
}

function trendChart() {
  if (state.trendChart) return state.trendChart;
  const bar = (label) => ({ type: "bar", label, data: [], backgroundColor: COLORS[label], stack: "volume",
                            yAxisID: "y" });
  state.trendChart = new Chart($("trend-chart"), {
    data: { labels: [], datasets: [bar("negative"), bar("neutral"), bar("positive"),
      { type: "line", label: "net sentiment", data: [], borderColor: COLORS.net, backgroundColor: COLORS.net,
        yAxisID: "net", cubicInterpolationMode: "monotone", pointRadius: 2 }] },
    options: {
      responsive: true, maintainAspectRatio: false, animation: { duration: 250 },
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { stacked: true, grid: { display: false } },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: "posts" } },
        net: { position: "right", min: -1, max: 1, grid: { drawOnChartArea: false },
               title: { display: true, text: "net sentiment" } },
      },
      plugins: { legend: { position: "bottom" } },
    },
  });
  return state.trendChart;
}

async function loadTrends() {
  if (!state.brand) return;
  const series = await api(`/api/brands/${encodeURIComponent(state.brand)}/trends?granularity=${state.granularity}`);
  const chart = trendChart();
  chart.data.labels = series.points.map((p) => timeLabel(p.bucket_start));
  chart.data.datasets[0].data = series.points.map((p) => p.negative);
  chart.data.datasets[1].data = series.points.map((p) => p.neutral);
  chart.data.datasets[2].data = series.points.map((p) => p.positive);
  chart.data.datasets[3].data = series.points.map((p) => Math.round(p.net_sentiment * 1000) / 1000);
  chart.update();
  const total = series.points.reduce((sum, p) => sum + p.volume, 0);
  $("trend-chart").dataset.totalVolume = String(total);
  $("trend-chart").dataset.brand = series.brand;
  $("total-volume").textContent = String(total);
  $("source").textContent = series.source;
  $("brand-title").textContent = series.brand;
  $("last-update").textContent = new Date().toLocaleTimeString();
}

async function loadCompare() {
  if (!state.brands.length) return;
  const query = state.brands.map((b) => "brands=" + encodeURIComponent(b)).join("&");
  const comparison = await api(`/api/compare?${query}&granularity=${state.granularity}`);
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
  const breakdown = await api(`/api/brands/${encodeURIComponent(state.brand)}/languages?granularity=${state.granularity}`);
  const rows = breakdown.languages.map((r) => el("tr",
    { class: r.language_supported ? "" : "unsupported", "data-language": r.language },
    el("td", {}, r.language), el("td", {}, String(r.volume)), el("td", {}, (r.share * 100).toFixed(1) + " %"),
    el("td", {}, r.language_supported ? "yes" : "no: not supported")));
  $("language-table").querySelector("tbody").replaceChildren(...rows);
  $("language-meta").textContent = breakdown.unsupported_volume
    ? `${breakdown.unsupported_volume} of ${breakdown.total_volume} posts left out of the trends`
    : (breakdown.total_volume ? "every post counted" : "no posts in this window");
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
    el("td", { class: "model-id" }, m.model_version), el("td", {}, String(m.live_posts)),
    el("td", {}, String(m.rescored_posts)), el("td", {}, m.last_post_at ? timeLabel(m.last_post_at) : "-"))));
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

async function loadPosts() {
  if (!state.brand) return;
  const label = state.label ? `&label=${state.label}` : "";
  const posts = await api(`/api/brands/${encodeURIComponent(state.brand)}/posts?limit=12${label}`);
  forgetThumbnailsBut(new Set(posts.map((p) => p.thumbnail_url).filter(Boolean)));
  const items = posts.map((p) => el("li", { "data-post-id": p.post_id },
    thumbnail(p),
    el("div", { class: "post-body" },
      el("p", { class: "post-text" }, p.text_excerpt || "(no text)"),
      el("span", { class: "badge " + p.label }, p.label),
      el("span", { class: "meta" }, ` ${(p.confidence * 100).toFixed(0)} % · ${new Date(p.created_at).toLocaleString()}`),
      explainSlot(p.post_id))));
  $("posts").replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "No posts in this window.")]));
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

async function loadAlerts() {
  const alerts = await api("/api/alerts?limit=30");
  const items = alerts.map((a) => el("li", { "data-alert-id": String(a.id), "data-kind": a.kind },
    el("span", { class: "kind" }, a.kind.replace("_", " ")), a.message,
    ...(a.details ? [alertWhy(a)] : []),
    el("span", { class: "when" }, new Date(a.fired_at).toLocaleString())));
  $("alerts").replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "No alerts fired.")]));
  $("alert-meta").textContent = alerts.length ? `${alerts.length} most recent` : "";
}

async function loadHealth() {
  const health = await api("/api/health");
  const parts = [];
  const ok = (flag, name) => el("span", { class: flag ? "" : "bad" }, `${name} ${flag ? "ok" : "down"}`);
  parts.push(ok(health.database.ok, "PostgreSQL"), " · ", ok(health.redis.ok, "Redis"));
  const versions = (health.database.model_versions || []).map((v) => v.model_version);
  if (versions.length) parts.push(" · model " + versions[0]);
  if (health.database.latest_processed_at) {
    parts.push(" · last post " + new Date(health.database.latest_processed_at).toLocaleTimeString());
  }
  $("health").replaceChildren(...parts);
}

async function refreshAll() {
  await Promise.all([loadTrends(), loadCompare(), loadPosts(), loadLanguages(), loadAlerts(), loadHealth(),
    loadModels()]);
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
    if (status.live) debounce("all", guarded(refreshAll), 200);  // catch up on anything missed
  });
  source.addEventListener("trend", (event) => {
    const update = JSON.parse(event.data);
    state.liveCount += 1;
    $("live-count").textContent = String(state.liveCount);
    if (!state.brands.includes(update.brand)) {
      debounce("brands", guarded(async () => { await loadBrands(); await loadCompare(); }), 500);
    }
    if (update.brand === state.brand) {
      debounce("trends", guarded(async () => { await loadTrends(); await loadPosts(); await loadLanguages(); }), 300);
    }
    debounce("compare", guarded(loadCompare), 800);
    debounce("alerts", guarded(loadAlerts), 1500);
  });
  source.onerror = () => { pill.textContent = "reconnecting"; pill.className = "pill off"; };
}

function bindControls() {
  $("brand").addEventListener("change", (event) => {
    state.brand = event.target.value;
    const url = new URL(window.location.href);
    url.searchParams.set("brand", state.brand);
    window.history.replaceState(null, "", url.pathname + url.search);
    guarded(async () => { await Promise.all([loadTrends(), loadPosts(), loadCompare(), loadLanguages()]); })();
  });
  $("granularity").addEventListener("change", (event) => {
    state.granularity = event.target.value;
    guarded(async () => { await Promise.all([loadTrends(), loadCompare(), loadLanguages()]); })();
  });
  for (const button of document.querySelectorAll(".filters button")) {
    button.addEventListener("click", () => {
      document.querySelectorAll(".filters button").forEach((b) => b.classList.toggle("active", b === button));
      state.label = button.dataset.label;
      guarded(loadPosts)();
    });
  }
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("monitor-token", $("token").value);
    start();
  });
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
  setInterval(guarded(async () => { await Promise.all([loadAlerts(), loadHealth(), loadModels()]); }), 30000);
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => { bindControls(); start(); });
