"""Render an `evals gate` result: a Markdown summary (for the terminal, a pull request or the GitHub
Actions step summary) and JUnit XML (one test case per row, for CI test reporters).

Reads only the records of evals.gate_records; the verdicts are decided in evals.gate.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from evals.gate_records import INCONCLUSIVE, PASS, REGRESSION, GateReport, GateRow

RULE = (
    "regression: upper bound < 0 and diff < -margin; pass: lower bound >= -margin; "
    "otherwise inconclusive{strict}"
)


def _points(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _confidence(report: GateReport) -> str:
    return f"{100 * (1 - report.alpha):g}%"


def _rule(report: GateReport) -> str:
    return RULE.format(
        strict=" (a failure: --strict)" if report.strict else " (not a failure without --strict)"
    )


def headline(report: GateReport) -> str:
    counts = ", ".join(f"{report.count(v)} {v}" for v in (REGRESSION, INCONCLUSIVE, PASS) if report.count(v))
    return f"evals gate: {'FAIL' if report.failed else 'PASS'} ({counts or 'no rows'})"


def render_gate_markdown(report: GateReport) -> str:
    """The summary: a headline, one table line per row, the rule and any notes."""
    conf = _confidence(report)
    lines = [
        f"### {headline(report)}",
        "",
        f"baseline `{report.baseline}`, candidate `{report.candidate}`; candidate − baseline in points "
        f"with its one-sided {conf} bounds (paired bootstrap over samples, alpha {report.alpha:g})",
        "",
        f"| row | n | baseline | candidate | diff [{conf} lower, upper bound] | margin | verdict |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for row in report.rows:
        verdict = f"**{row.verdict}**" if row.fails(report.strict) else row.verdict
        diff = f"{_points(row.diff, True)} [{_points(row.lower, True)}, {_points(row.upper, True)}]"
        lines.append(
            f"| {_cell(row.label)} | {row.n} | {_points(row.baseline)} | {_points(row.candidate)} | {diff} "
            f"| {_points(row.margin)} | {verdict} |"
        )
    lines += ["", f"Rule: {_rule(report)}."]
    for row in report.rows:
        if row.protocol_differences:
            lines.append(
                f"- {row.label}: compared despite protocol differences (--allow-protocol-diff): "
                + "; ".join(row.protocol_differences)
            )
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _detail(row: GateRow, report: GateReport) -> str:
    conf = _confidence(report)
    return (
        f"{row.metric} over {row.n} paired samples: baseline {_points(row.baseline)}, candidate "
        f"{_points(row.candidate)}, diff {_points(row.diff, True)} (one-sided {conf} bounds "
        f"{_points(row.lower, True)}, {_points(row.upper, True)}), margin {_points(row.margin)}: "
        f"{row.verdict} ({row.reason})"
    )


def render_junit(report: GateReport) -> str:
    """JUnit XML: one <testcase> per row; a regression is a <failure>, an inconclusive row a <failure>
    under --strict and <skipped> otherwise."""
    failures = sum(row.fails(report.strict) for row in report.rows)
    skipped = sum(row.verdict == INCONCLUSIVE and not row.fails(report.strict) for row in report.rows)
    suites = ET.Element("testsuites", name="evals gate", tests=str(len(report.rows)),
                        failures=str(failures), errors="0", skipped=str(skipped))  # fmt: skip
    suite = ET.SubElement(suites, "testsuite", name="evals gate", tests=str(len(report.rows)),
                          failures=str(failures), errors="0", skipped=str(skipped))  # fmt: skip
    properties = ET.SubElement(suite, "properties")
    for name, value in (("baseline", report.baseline), ("candidate", report.candidate),
                        ("alpha", f"{report.alpha:g}"), ("strict", str(report.strict).lower())):  # fmt: skip
        ET.SubElement(properties, "property", name=name, value=value)
    for row in report.rows:
        case = ET.SubElement(suite, "testcase", classname=f"evals.gate.{row.task}", name=row.label, time="0")
        detail = _detail(row, report)
        if row.fails(report.strict):
            failure = ET.SubElement(case, "failure", type=row.verdict, message=f"{row.verdict}: {row.reason}")
            failure.text = detail
        elif row.verdict == INCONCLUSIVE:
            ET.SubElement(case, "skipped", message=f"inconclusive: {row.reason}")
        ET.SubElement(case, "system-out").text = detail
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
