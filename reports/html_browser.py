"""The samples browser of report.html: every sample as JSON in a <script type="application/json">
block, and a small inline script (no libraries, no network) that pages through them (50 a page)
with filters by row, outcome and category and a text search; the reasoning is folded by default.

What goes into the page: per sample its row, id, repeat, outcome, category, extracted answer and
target, flags, finish reason and tokens; for rows whose text may be shown, the end of its prompt,
its final answer, reasoning and follow-up, each clipped to a cap (samples.jsonl keeps the full
text). For rows whose question text is redacted, neither the prompt nor the model's text is in the
data at all. The script escapes control characters visibly and writes text only as text.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from evals.records import Results, SampleRecord
from reports.html_text import clip, embed_json, esc, tail

# Characters of model text (final answer, follow-up; reasoning) and of prompts kept in the page in
# all: each text is cut to its share of the budget (within the bounds), keeping its start and end
# (a prompt: its end, where the question is). A small run keeps whole texts; a 12,032-question run
# keeps about 800 characters of each answer and 700 of each prompt, about 20 MB in all.
ANSWER_BUDGET, ANSWER_BOUNDS = 10_000_000, (800, 20_000)
REASONING_BUDGET, REASONING_BOUNDS = 6_000_000, (500, 20_000)
PROMPT_BUDGET, PROMPT_BOUNDS = 6_000_000, (700, 8_000)
SHORT_CAP = 300  # extracted answer, target, error
HIDDEN_SHORT_CAP = 40  # extracted answer and target of a redacted row (letters, numbers)
OUTCOME_ORDER = ("correct", "wrong", "unparsed", "truncated", "error", "timeout")


def browser_data(
    results: Results,
    samples: Sequence[SampleRecord],
    prompts: dict[str, Any],
    redact: bool | None,
    redacted_note: str,
) -> dict[str, Any]:
    """The JSON the script reads: rows (label, hidden), prompts (by index) and compact samples."""
    labels = [row.label for row in results.scored]
    hidden = [redact if redact is not None else not row.public_text for row in results.scored]
    for sample in samples:  # a sample of a row the results do not list is kept, and hidden
        if sample.row not in labels:
            labels.append(sample.row)
            hidden.append(redact is not False)
    index = {label: i for i, label in enumerate(labels)}
    shown = [s for s in samples if not hidden[index[s.row]]]
    answer_cap = _share(ANSWER_BUDGET, len(shown), ANSWER_BOUNDS)
    reasoning_cap = _share(REASONING_BUDGET, len(shown), REASONING_BOUNDS)
    prompt_cap = _share(PROMPT_BUDGET, len({s.prompt_id for s in shown}), PROMPT_BOUNDS)
    shared = _shared_paragraphs([prompts[p] for p in {s.prompt_id for s in shown} if p in prompts])
    prompt_index: dict[str, int] = {}
    prompt_texts: list[str] = []
    items = []
    for sample in samples:
        r = index[sample.row]
        short = HIDDEN_SHORT_CAP if hidden[r] else SHORT_CAP
        item: dict[str, Any] = {"r": r, "i": sample.id, "k": sample.repeat, "o": sample.outcome}
        if sample.category:
            item["c"] = sample.category
        if sample.extracted is not None:
            item["x"] = clip(str(sample.extracted), short)
        if sample.target is not None:
            item["t"] = clip(_as_text(sample.target), short)
        if sample.flags:
            item["f"] = list(sample.flags)
        item["n"], item["m"] = sample.finish_reason, sample.completion_tokens
        if sample.error:
            item["e"] = clip(sample.error, SHORT_CAP)
        if not hidden[r]:
            prompt = prompts.get(sample.prompt_id)
            if prompt is not None:
                if sample.prompt_id not in prompt_index:
                    prompt_index[sample.prompt_id] = len(prompt_texts)
                    prompt_texts.append(_prompt_view(prompt_text(prompt), shared, prompt_cap))
                item["p"] = prompt_index[sample.prompt_id]
            item["a"] = clip(sample.answer, answer_cap)
            if sample.reasoning:
                item["h"] = clip(sample.reasoning, reasoning_cap)
            if sample.followup is not None:
                item["u"] = clip(sample.followup.answer, answer_cap)
        items.append(item)
    rows = [{"label": label, "hidden": h} for label, h in zip(labels, hidden, strict=True)]
    return {
        "rows": rows,
        "prompts": prompt_texts,
        "samples": items,
        "redacted": redacted_note,
        "page": PAGE_SIZE,
        "preview": PREVIEW,
    }


def _share(budget: int, count: int, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return max(low, min(high, budget // max(count, 1)))


def _paragraphs(text: str) -> list[str]:
    """`text` cut after each blank line (the pieces join back to it)."""
    parts = text.split("\n\n")
    return [p + "\n\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _shared_paragraphs(prompts: Sequence[Any]) -> set[str]:
    """Paragraphs found in more than one prompt (instructions, few-shot examples)."""
    counts = Counter(p for prompt in prompts for p in set(_paragraphs(prompt_text(prompt))))
    return {p for p, n in counts.items() if n > 1}


def _prompt_view(text: str, shared: set[str], cap: int) -> str:
    """A long prompt without its leading paragraphs shared with other prompts, cut to its end."""
    if len(text) <= cap:
        return text
    pieces = _paragraphs(text)
    lead = 0
    while lead < len(pieces) - 1 and pieces[lead] in shared:
        lead += 1
    if lead:
        left_out = sum(len(p) for p in pieces[:lead])
        note = f"[… {left_out:,} characters shared with other prompts (instructions, examples) left out …]\n"
        return note + tail("".join(pieces[lead:]), cap)
    return tail(text, cap)


def prompt_text(prompt: Any) -> str:
    """A prompt as text: a raw prompt as it is, chat messages as "[role] text" turns."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"[{t['role']}] " + "".join(t["content"]) for t in prompt or [])


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def browser_section(data: dict[str, Any]) -> str:
    """The browser's controls, its data block and its script."""
    samples = data["samples"]
    outcomes = Counter(s["o"] for s in samples)
    ordered = [o for o in OUTCOME_ORDER if o in outcomes] + sorted(set(outcomes) - set(OUTCOME_ORDER))
    categories = sorted({s["c"] for s in samples if "c" in s})
    row_options = "".join(
        f"<option value='{i}'>{esc(row['label'])}</option>" for i, row in enumerate(data["rows"])
    )
    outcome_options = "".join(f"<option value='{esc(o)}'>{esc(o)} ({outcomes[o]})</option>" for o in ordered)
    not_correct = len(samples) - outcomes.get("correct", 0)
    category_options = "".join(f"<option value='{esc(c)}'>{esc(c)}</option>" for c in categories)
    return (
        "<section id='samples'><h2>Samples</h2>"
        f"<p class='note'>All {len(samples)} samples, {PAGE_SIZE} a page. Long text is cut to its start and "
        "end (samples.jsonl has all of it); the reasoning is folded.</p>"
        "<div class='controls'>"
        f"<label>Row <select id='f-row'><option value=''>all rows</option>{row_options}</select></label>"
        "<label>Outcome <select id='f-outcome'><option value=''>all outcomes</option>"
        f"<option value='not-correct'>not correct ({not_correct})</option>{outcome_options}</select></label>"
        "<label>Category <select id='f-category'><option value=''>all categories</option>"
        f"{category_options}</select></label>"
        "<label>Search <input id='f-search' type='search' placeholder='id, answer, reasoning, prompt'></label>"
        "</div><div class='pager'><button type='button' id='b-prev'>‹ previous</button> "
        "<span id='b-page'></span> <button type='button' id='b-next'>next ›</button> "
        "<span id='b-status'></span></div><div id='b-list'></div>"
        "<noscript><p>The samples browser needs JavaScript; samples.jsonl has every sample.</p></noscript>"
        f"<script type='application/json' id='samples-data'>{embed_json(data)}</script>"
        f"<script>{SCRIPT}</script></section>"
    )


PAGE_SIZE = 50
PREVIEW = 600  # characters of a long answer shown (its start and end) before "show all"

BROWSER_STYLE = """
.controls{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.controls label{font-size:14px}
.pager{margin:8px 0;font-size:14px}.pager span{margin:0 8px}
.sample{border:1px solid #ddd;border-radius:6px;padding:8px 10px;margin:8px 0}
.sample .meta{display:flex;flex-wrap:wrap;gap:6px 12px;font-size:13px;align-items:baseline;margin-bottom:4px}
.sample .row{color:#555}.sample .cat{color:#555;font-style:italic}
.badge{padding:1px 6px;border-radius:8px;color:#fff;background:#9a6700}
.badge.correct{background:#1a7f37}.badge.wrong{background:#b42318}
.flag{padding:1px 6px;border-radius:8px;background:#fff3cd;border:1px solid #e0c45c;font-size:12px}
.sample details{margin:4px 0}.sample summary{cursor:pointer;color:#444;font-size:13px}
.sample pre{background:#f7f7f7;padding:6px;border-radius:4px;max-height:30em}
.sample .redacted,.sample .error{font-size:13px;color:#9a6700;margin:4px 0}
button.more{font-size:12px;margin-top:2px}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("samples-data").textContent);
  var PAGE = data.page, PREVIEW = data.preview;
  var rows = data.rows, prompts = data.prompts, samples = data.samples;
  var CONTROL = /\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;
  function visible(text) {
    return String(text).replace(CONTROL, function (c) {
      var hex = c.charCodeAt(0).toString(16);
      return "\\x" + (hex.length < 2 ? "0" + hex : hex);
    });
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = visible(text);
    return node;
  }
  function byId(id) { return document.getElementById(id); }
  var fRow = byId("f-row"), fOutcome = byId("f-outcome"), fCategory = byId("f-category");
  var fSearch = byId("f-search"), list = byId("b-list");
  var page = 0, matching = [], haystacks = [];
  function haystack(i) {
    if (haystacks[i] === undefined) {
      var s = samples[i];
      haystacks[i] = [s.i, s.c, s.x, s.t, (s.f || []).join(" "), s.a, s.h, s.e, s.u,
        s.p === undefined ? "" : prompts[s.p]].join("\n").toLowerCase();
    }
    return haystacks[i];
  }
  function keep(i, row, outcome, category, words) {
    var s = samples[i];
    if (row !== "" && String(s.r) !== row) return false;
    if (outcome === "not-correct" ? s.o === "correct" : outcome !== "" && s.o !== outcome) return false;
    if (category !== "" && (s.c || "") !== category) return false;
    for (var w = 0; w < words.length; w++) if (haystack(i).indexOf(words[w]) < 0) return false;
    return true;
  }
  function filter() {
    var words = fSearch.value.toLowerCase().split(/\s+/).filter(Boolean);
    matching = [];
    for (var i = 0; i < samples.length; i++) {
      if (keep(i, fRow.value, fOutcome.value, fCategory.value, words)) matching.push(i);
    }
    page = 0;
    render();
    list.setAttribute("data-query", fSearch.value);
  }
  function fold(cls, name, body) {
    var box = el("details", cls);
    box.appendChild(el("summary", null, name + " (" + body.length + " characters)"));
    box.appendChild(el("pre", null, body));
    return box;
  }
  function preview(body) {  // its start and its end: an answer is read at its end
    var half = Math.floor(PREVIEW / 2);
    return body.slice(0, half) + "\n[… show all for the middle …]\n" + body.slice(body.length - half);
  }
  function shown(cls, body) {
    var box = el("div", cls), long = body.length > PREVIEW + 100, full = false;
    var pre = el("pre", null, long ? preview(body) : body);
    box.appendChild(pre);
    if (long) {
      var more = el("button", "more", "show all (" + body.length + " characters)");
      more.type = "button";
      more.addEventListener("click", function () {
        full = !full;
        pre.textContent = visible(full ? body : preview(body));
        more.textContent = full ? "show less" : "show all (" + body.length + " characters)";
      });
      box.appendChild(more);
    }
    return box;
  }
  function card(s) {
    var row = rows[s.r], box = el("article", "sample");
    box.setAttribute("data-outcome", s.o);
    var meta = el("div", "meta");
    meta.appendChild(el("span", "row", row.label));
    meta.appendChild(el("b", "sid", s.i));
    meta.appendChild(el("span", "rep", "repeat " + s.k));
    meta.appendChild(el("span", "badge " + s.o, s.o));
    if (s.c) meta.appendChild(el("span", "cat", s.c));
    meta.appendChild(el("span", "ext", "extracted " + (s.x === undefined ? "—" : s.x) +
      " / target " + (s.t === undefined ? "—" : s.t)));
    (s.f || []).forEach(function (flag) { meta.appendChild(el("span", "flag", flag)); });
    meta.appendChild(el("span", "tok", (s.m ? s.m + " tokens, " : "") + "finish: " + s.n));
    box.appendChild(meta);
    if (row.hidden) {
      box.appendChild(el("p", "redacted", data.redacted));
    } else {
      if (s.p !== undefined) box.appendChild(fold("prompt", "prompt", prompts[s.p]));
      if (s.h) box.appendChild(fold("reasoning", "reasoning", s.h));
      box.appendChild(shown("answer", s.a || ""));
      if (s.u !== undefined) box.appendChild(shown("followup", "follow-up: " + s.u));
    }
    if (s.e) box.appendChild(el("p", "error", "error: " + s.e));
    return box;
  }
  function render() {
    var pages = Math.max(1, Math.ceil(matching.length / PAGE));
    if (page > pages - 1) page = pages - 1;
    var start = page * PAGE, end = Math.min(matching.length, start + PAGE);
    var items = document.createDocumentFragment();
    for (var j = start; j < end; j++) items.appendChild(card(samples[matching[j]]));
    list.textContent = "";
    list.appendChild(items);
    byId("b-status").textContent = matching.length
      ? "samples " + (start + 1) + "–" + end + " of " + matching.length + " matching (" + samples.length + " in all)"
      : "no sample matches (" + samples.length + " in all)";
    byId("b-page").textContent = "page " + (page + 1) + " of " + pages;
    byId("b-prev").disabled = page === 0;
    byId("b-next").disabled = page >= pages - 1;
  }
  function turn(step) {
    page += step;
    render();
    byId("samples").scrollIntoView();
  }
  var timer = null;
  fRow.addEventListener("change", filter);
  fOutcome.addEventListener("change", filter);
  fCategory.addEventListener("change", filter);
  fSearch.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(filter, 150);
  });
  byId("b-prev").addEventListener("click", function () { turn(-1); });
  byId("b-next").addEventListener("click", function () { turn(1); });
  filter();
})();
"""
