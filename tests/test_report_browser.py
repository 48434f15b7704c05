"""report.html in a real headless Chromium (Debian's /usr/bin/chromium driven by Selenium through
/usr/bin/chromedriver): it loads with no console errors, the card chart and table are there, the
samples browser filters by outcome, row and category, searches, pages and folds the reasoning,
GPQA question text is nowhere in the page unless asked for, and control characters in model
output are shown as visible escapes. The run directory is written by evals.run_dir.write_run from
real task scoring of the built-in questions (MMLU-Pro, GPQA Diamond, AIME) with hand-written
outputs. A screenshot of the top of the page is saved under the test's tmp folder and, when
EVALS_SCREENSHOT_TO is set, copied there.

Skips when chromium or chromedriver is missing, unless EVALS_REQUIRE_BROWSER=1 (CI), where that fails.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evals import registry
from evals.prompt_store import PromptStore
from evals.records import ReportHeader, Results, Row, RunInfo, SampleRecord, UnavailableRow
from evals.run_dir import load_run_dir, write_reports, write_run
from evals.schema import Completion
from evals.scoring import sample_records, score_all
from runners.outputs import split_output
from tasks.gpqa_diamond import LETTERS, GPQADiamond

pytestmark = pytest.mark.subprocess  # starts chromium and chromedriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CONTROL_MARK = "\x00\x1b[31mred"
INJECTION = "</script><script>document.title='injected'</script>"
REASONING_MARK = "weighing-the-options-7f3a"
GPQA_OUTPUT_MARK = "gpqa-model-text-91c2"
SEARCH_MARK = "needle-5e1d"
AIME_ROW, GPQA_ROW = "1", "2"  # the browser's row filter values: index among the scored rows


# --- a run directory from real scoring ------------------------------------------------------------


def _mmlu_output(index: int, target: str, repeat: int) -> tuple[str, str]:
    """(raw output, finish reason): correct, wrong, unparsed or cut off, in turn."""
    wrong = "A" if target != "A" else "B"
    kind = (index + repeat) % 4
    if index == 0 and repeat == 0:
        return f"{CONTROL_MARK} The answer is ({target})", "stop"
    if index == 1 and repeat == 0:
        return f"{INJECTION} The answer is ({wrong})", "stop"
    if index == 2 and repeat == 0:
        return f"<|channel>thought\n{REASONING_MARK}<channel|>The answer is ({target})", "stop"
    if index == 3 and repeat == 0:
        return "Step by step. " * 100 + SEARCH_MARK + " Step. " * 100 + f"The answer is ({target})", "stop"
    return {
        0: (f"The answer is ({target})", "stop"),
        1: (f"The answer is ({wrong})", "stop"),
        2: ("I cannot tell.", "stop"),
        3: ("Let me think about this for a long", "length"),
    }[kind]


def _gpqa_output(task: GPQADiamond, sample_id: str, repeat: int) -> str:
    gold = LETTERS[task.permutation(sample_id, repeat).index(0)]
    wrong = next(letter for letter in LETTERS if letter != gold)
    answer = {0: f"Answer: {gold}", 1: f"Answer: {wrong}", 2: "no idea", 3: f"Answer: {gold}"}[repeat]
    return f"<|channel>thought\n{GPQA_OUTPUT_MARK} reasoning<channel|>{GPQA_OUTPUT_MARK} {answer}"


def _aime_output(index: int, target: Any) -> str:
    if index % 2:
        return f"So the result is {target}."  # read by the flagged last-integer fallback
    return f"\\boxed{{{target}}}"


def _score(name: str, label: str, published: float, repeats: int, prompts: PromptStore) -> tuple[Row, list]:
    task = registry.make_task(name, None, {})
    samples = task.load("builtin")
    requests, completions = [], {}
    for index, sample in enumerate(samples):
        for request in task.requests(sample, task.default_sampling, repeats):
            finish = "stop"
            if name == "mmlu_pro":
                raw, finish = _mmlu_output(index, sample.target, request.repeat)
            elif name == "gpqa_diamond":
                raw = _gpqa_output(task, sample.id, request.repeat)
            else:
                raw = _aime_output(index, sample.target)
            split = split_output(raw)
            requests.append(request)
            completions[request.key] = Completion(
                key=request.key, text=split.answer, raw=raw, reasoning=split.reasoning,
                finish_reason=finish, completion_tokens=len(raw) // 4,
            )  # fmt: skip
    result = score_all(task, samples, requests, completions, label=label, published=published)
    row = result.to_row(protocol=result.protocol(task.default_sampling, repeats))
    return row, sample_records(result, prompts)


def write_test_run(out: Path) -> Path:
    prompts = PromptStore()
    rows: list[Row] = []
    records: list[SampleRecord] = []
    for name, label, published, repeats in (
        ("mmlu_pro", "MMLU Pro", 77.2, 3),
        ("aime", "AIME 2026 no tools", 77.5, 1),
        ("gpqa_diamond", "GPQA Diamond", 78.8, 4),
    ):
        row, mine = _score(name, label, published, repeats, prompts)
        rows.append(row)
        records += mine
    rows.insert(2, UnavailableRow("MMMU Pro", "mmmu_pro", 69.1, "not run in this test"))
    header = ReportHeader(title="Browser test run", model="hand-written outputs", backend="none")
    info = RunInfo(
        kind="score", started="2026-01-01T00:00:00", finished="2026-01-01T00:00:01", environment={}
    )
    write_run(out, info, Results(header, rows), records, prompts)
    return out


# --- the browser ----------------------------------------------------------------------------------


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    reason = f"{' and '.join(missing)} missing: apt-get install chromium chromium-driver"
    if os.environ.get("EVALS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"EVALS_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1600", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_run(tmp_path_factory.mktemp("browser") / "run")


@pytest.fixture(scope="module")
def page(driver: Any, run_dir: Path) -> Any:
    driver.get((run_dir / "report.html").as_uri())
    return driver


def open_fresh(driver: Any, path: Path) -> None:
    driver.get("about:blank")
    driver.get(path.as_uri())


def visible_samples(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    shown = driver.execute_script(
        "return Array.from(document.querySelectorAll('#b-list article.sample'))"
        ".filter(e => e.offsetParent !== null).length"
    )
    found = driver.find_elements(By.CSS_SELECTOR, "#b-list article.sample")
    assert len(found) == shown  # every sample on the page is displayed
    return list(found)


def choose(driver: Any, select_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, select_id)).select_by_value(value)


def search(driver: Any, text: str) -> None:
    """Type into the search box and wait until the list shows that search (it waits 150 ms for keys)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    box, list_ = driver.find_element(By.ID, "f-search"), driver.find_element(By.ID, "b-list")
    driver.execute_script("arguments[0].removeAttribute('data-query')", list_)  # set again by the search
    box.clear()
    if text:
        box.send_keys(text)
    else:  # clear() fires no input event
        driver.execute_script("arguments[0].dispatchEvent(new Event('input'))", box)
    WebDriverWait(driver, 5, poll_frequency=0.05).until(lambda _: list_.get_attribute("data-query") == text)


def reset(driver: Any) -> None:
    for select_id in ("f-row", "f-outcome", "f-category"):
        choose(driver, select_id, "")
    search(driver, "")


# --- the tests ------------------------------------------------------------------------------------


def test_page_loads_clean_with_chart_table_and_screenshot(
    page: Any, run_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from selenium.webdriver.common.by import By

    errors = [entry for entry in page.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    assert page.title == "Browser test run"  # the script inside model output did not run
    chart = page.find_element(By.ID, "card-chart")
    assert chart.is_displayed() and chart.location["y"] < page.find_element(By.ID, "card-table").location["y"]
    verdicts = [e.text for e in chart.find_elements(By.CSS_SELECTOR, "text.verdict")]
    assert len(verdicts) == 4 and verdicts[2] == "not run"  # one per card row, in card order
    table_rows = page.find_elements(By.CSS_SELECTOR, "table.card tr")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in table_rows[1:]] == [
        "MMLU Pro", "AIME 2026 no tools", "MMMU Pro", "GPQA Diamond",
    ]  # fmt: skip
    assert len(page.find_elements(By.CSS_SELECTOR, "svg.category-chart")) >= 1
    shot = tmp_path_factory.mktemp("screenshot") / "report.png"
    page.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": 1600, "deviceScaleFactor": 1, "mobile": False},
    )
    page.execute_script("window.scrollTo(0, 0)")
    assert page.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("EVALS_SCREENSHOT_TO"):
        target = Path(os.environ["EVALS_SCREENSHOT_TO"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "report-browser-test.png")


def test_filters_by_outcome_row_and_category_and_pages(page: Any, run_dir: Path) -> None:
    from selenium.webdriver.common.by import By

    samples = load_run_dir(run_dir).samples
    outcomes = Counter(s.outcome for s in samples)
    assert len(samples) == 30 + 5 + 28 and {"correct", "wrong", "unparsed", "truncated"} <= set(outcomes)
    reset(page)
    assert len(visible_samples(page)) == 50  # first page of 63
    page.find_element(By.ID, "b-next").click()
    assert len(visible_samples(page)) == 13
    for outcome in ("unparsed", "truncated", "wrong"):
        choose(page, "f-outcome", outcome)
        shown = visible_samples(page)
        assert len(shown) == outcomes[outcome]
        assert {e.get_attribute("data-outcome") for e in shown} == {outcome}
    choose(page, "f-outcome", "not-correct")
    assert len(visible_samples(page)) == len(samples) - outcomes["correct"]
    choose(page, "f-outcome", "")
    choose(page, "f-row", GPQA_ROW)
    rows = {e.find_element(By.CSS_SELECTOR, ".row").text for e in visible_samples(page)}
    assert rows == {"GPQA Diamond"} and len(visible_samples(page)) == 28
    choose(page, "f-row", "")
    category = next(s.category for s in samples if s.row == "MMLU Pro" and s.category)
    choose(page, "f-category", category)
    expected = sum(1 for s in samples if s.category == category)
    assert len(visible_samples(page)) == expected
    reset(page)


def test_flags_are_visible(page: Any, run_dir: Path) -> None:
    from selenium.webdriver.common.by import By

    flagged = [s for s in load_run_dir(run_dir).samples if s.flags]
    assert flagged  # AIME answers read by the last-integer fallback
    reset(page)
    choose(page, "f-row", AIME_ROW)
    shown = page.find_elements(By.CSS_SELECTOR, "#b-list .flag")
    assert len(shown) == len(flagged) and all(e.is_displayed() for e in shown)
    assert {e.text for e in shown} == {flag for s in flagged for flag in s.flags}
    reset(page)


def test_text_search(page: Any) -> None:
    reset(page)
    search(page, SEARCH_MARK.upper())  # case-insensitive
    shown = visible_samples(page)
    assert len(shown) == 1 and shown[0].get_attribute("data-outcome") == "correct"
    search(page, "no sample says this")
    assert visible_samples(page) == []
    reset(page)


def test_reasoning_is_folded_and_long_answers_unfold(page: Any) -> None:
    from selenium.webdriver.common.by import By

    reset(page)
    folds = page.find_elements(By.CSS_SELECTOR, "#b-list details")
    assert folds and all(f.get_attribute("open") is None for f in folds)  # prompts and reasoning folded
    search(page, REASONING_MARK)
    (card,) = visible_samples(page)
    fold = card.find_element(By.CSS_SELECTOR, "details.reasoning")
    assert fold.get_attribute("open") is None
    assert REASONING_MARK not in card.text  # folded: not shown
    fold.find_element(By.TAG_NAME, "summary").click()
    assert REASONING_MARK in card.text
    search(page, SEARCH_MARK)
    (card,) = visible_samples(page)
    answer = card.find_element(By.CSS_SELECTOR, ".answer pre")
    assert SEARCH_MARK not in answer.text  # it is in the middle: left out of the preview
    card.find_element(By.CSS_SELECTOR, "button.more").click()
    assert SEARCH_MARK in card.find_element(By.CSS_SELECTOR, ".answer pre").text
    reset(page)


def test_control_characters_and_script_text_are_shown_escaped(page: Any) -> None:
    from selenium.webdriver.common.by import By

    reset(page)
    search(page, "[31mred")
    (card,) = visible_samples(page)
    answer = card.find_element(By.CSS_SELECTOR, ".answer pre").text
    assert "\\x00\\x1b[31mred" in answer
    source = page.page_source
    assert "\x00" not in source and "\x1b" not in source
    search(page, "document.title")
    (card,) = visible_samples(page)
    assert INJECTION in card.find_element(By.CSS_SELECTOR, ".answer pre").text  # shown as text
    assert page.title == "Browser test run"
    reset(page)


def test_gpqa_question_text_absent_unless_asked(page: Any, run_dir: Path, driver: Any) -> None:
    questions = [s.inputs["question"] for s in GPQADiamond().load("builtin")]
    reset(page)
    choose(page, "f-row", GPQA_ROW)
    body = page.find_element("tag name", "body").text
    source = page.page_source
    assert "redacted" in body
    for text in (*questions, GPQA_OUTPUT_MARK):
        assert text not in source and text not in body
    # asked for: the same run rendered with redact=False shows them
    run = load_run_dir(run_dir)
    shown = run_dir.parent / "shown"
    shown.mkdir(exist_ok=True)
    write_reports(shown, run.results, run.samples, run.prompts, redact=False)
    open_fresh(driver, shown / "report.html")
    try:
        choose(driver, "f-row", GPQA_ROW)
        search(driver, questions[0][:40])
        assert visible_samples(driver)
        assert GPQA_OUTPUT_MARK in driver.find_element("tag name", "body").text
    finally:
        open_fresh(driver, run_dir / "report.html")
